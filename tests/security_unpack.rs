//! Security checklist, unpack cases 1–14 (docs/SECURITY.md): layer tars that try to write
//! outside their layer directory, forge overlayfs metadata, confuse the tar reader, or exhaust
//! memory, disk or time. Each is pulled from a registry of its own (tests/common/
//! fault_registry.rs) into a private store (tests/common/sandbox.rs); a refused layer must
//! leave one line on stderr (exit 125), nothing outside the layer, and nothing of itself in
//! the store. Tests are named after the advisory they guard against, else `case_N_…`.
//!
//! Run as root: `cargo test --release --test security_unpack`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fault_registry::{Layer, TarBuilder, TarEntry, image_from_layers};
use common::sandbox::{
    Sandbox, assert_layer_refused, assert_pulled, assert_tar_refused, busybox_rootfs, climbing_to,
    layer_diff, lgetxattr, names_in, pull_layers, serve, wait_outcome, walk,
};

// ---------------------------------------------------------------------------------------------
// 1–6: entries that reach outside the layer
// ---------------------------------------------------------------------------------------------

#[test]
fn case_1_dotdot_entry_is_refused() {
    let sandbox = Sandbox::new("dotdot");
    let outside = sandbox.outside();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file("../escape", b"escaped")
        .finish();
    assert_tar_refused(&sandbox, tar, "../escape", &outside);
    let escaped: Vec<PathBuf> = walk(&sandbox.dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "escape"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
}

#[test]
fn case_1_entry_climbing_to_the_host_is_refused() {
    let sandbox = Sandbox::new("climb");
    let outside = sandbox.outside();
    let name = climbing_to(&outside.join("climbed"));
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file(&name, b"escaped")
        .finish();
    assert_tar_refused(&sandbox, tar, &name, &outside);
}

#[test]
fn case_1_inner_dotdot_entry_is_refused() {
    let sandbox = Sandbox::new("inner-dotdot");
    let outside = sandbox.outside();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file("a/../../x", b"escaped")
        .finish();
    assert_tar_refused(&sandbox, tar, "a/../../x", &outside);

    let name = format!("a/{}", climbing_to(&outside.join("x")));
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file(&name, b"escaped")
        .finish();
    assert_tar_refused(&sandbox, tar, &name, &outside);
}

#[test]
fn case_2_absolute_entry_is_refused() {
    let sandbox = Sandbox::new("abs");
    let outside = sandbox.outside();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file("/abs/file", b"absolute")
        .finish();
    let abs_existed = Path::new("/abs").exists();
    assert_tar_refused(&sandbox, tar, "/abs/file", &outside);
    assert!(
        abs_existed || !Path::new("/abs").exists(),
        "/abs was created"
    );

    let name = outside.join("absolute");
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .file(name.as_os_str().as_bytes(), b"absolute")
        .finish();
    assert_tar_refused(&sandbox, tar, name.to_str().unwrap(), &outside);
}

#[test]
fn case_3_write_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new("symlink");
    let outside = sandbox.outside();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .symlink("link", outside.as_os_str().as_bytes())
        .file("link/file", b"through the link")
        .finish();
    assert_tar_refused(&sandbox, tar, "link/file", &outside);
    assert!(!outside.join("file").exists());
}

#[test]
fn case_3_whiteout_through_a_symlink_is_refused() {
    let sandbox = Sandbox::new("symlink-wh");
    let outside = sandbox.outside();
    std::fs::write(outside.join("victim"), b"keep me").unwrap();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .symlink("link", outside.as_os_str().as_bytes())
        .file("link/.wh.victim", b"")
        .finish();
    assert_tar_refused(&sandbox, tar, "link/.wh.victim", &outside);
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep me");
}

#[test]
fn rustsec_2018_0002_hardlinks_leaving_the_layer_are_refused() {
    let sandbox = Sandbox::new("hardlink");
    let outside = sandbox.outside();
    let secret = outside.join("secret");
    std::fs::write(&secret, b"secret").unwrap();
    let passwd_links = std::fs::metadata("/etc/passwd").unwrap().nlink();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("h", b"../../etc/passwd".to_vec()),
        ("h", climbing_to(Path::new("/etc/passwd")).into_bytes()),
        ("h", b"/etc/passwd".to_vec()),
        ("h", secret.as_os_str().as_bytes().to_vec()),
    ];
    for (name, target) in cases {
        let tar = TarBuilder::new()
            .file("fine", b"ok")
            .hardlink(name, &target)
            .finish();
        assert_tar_refused(&sandbox, tar, name, &outside);
    }
    // A hardlink whose target's parent is a symlink out of the layer.
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .symlink("link", outside.as_os_str().as_bytes())
        .hardlink("h", "link/secret")
        .finish();
    assert_tar_refused(&sandbox, tar, "h", &outside);

    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().nlink(),
        passwd_links
    );
}

#[test]
fn image_spec_1314_bare_whiteouts_are_refused() {
    let sandbox = Sandbox::new("bare-wh");
    let outside = sandbox.outside();
    // `.wh.` hides nothing, `.wh..` the directory itself, `.wh...` its parent.
    for name in [
        ".wh.",
        "dir/.wh.",
        ".wh..",
        "dir/.wh..",
        ".wh...",
        "dir/.wh...",
    ] {
        let tar = TarBuilder::new()
            .file("fine", b"ok")
            .dir("dir")
            .file(name, b"")
            .finish();
        assert_tar_refused(&sandbox, tar, name, &outside);
    }
}

/// RUSTSEC-2018-0002: a hardlink to a file, then a regular entry of the hardlink's name, must
/// replace the link, not write through it into the file it shares an inode with.
#[test]
fn rustsec_2018_0002_hardlink_then_overwrite_does_not_write_through() {
    let sandbox = Sandbox::new("hardlink-overwrite");
    let tar = TarBuilder::new()
        .file("target", b"the original")
        .hardlink("link", "target")
        .file("link", b"overwritten through the link")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "evil/hl-overwrite", &[tar]);
    let diff = layer_diff(&sandbox, &image, 0);
    assert_eq!(std::fs::read(diff.join("target")).unwrap(), b"the original");
    assert_eq!(
        std::fs::read(diff.join("link")).unwrap(),
        b"overwritten through the link"
    );
    assert_eq!(std::fs::metadata(diff.join("target")).unwrap().nlink(), 1);

    // And a hardlink out of the layer followed by a write to it is refused at the link.
    let outside = sandbox.outside();
    let secret = outside.join("shadow");
    std::fs::write(&secret, b"secret").unwrap();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .hardlink("h", climbing_to(&secret))
        .file("h", b"written through")
        .finish();
    assert_tar_refused(&sandbox, tar, "h", &outside);
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret");
}

/// RUSTSEC-2021-0080: a symlink to a directory outside, then entries below it, must not create
/// directories (or anything) out there.
#[test]
fn rustsec_2021_0080_no_directory_is_created_through_a_symlink() {
    let sandbox = Sandbox::new("symlink-mkdir");
    let outside = sandbox.outside();
    for (link, entry) in [
        ("link", "link/made/deeper/"),
        ("rel", "rel/made/"),
        ("link", "link/made/file"),
    ] {
        let target = if link == "rel" {
            climbing_to(&outside).into_bytes()
        } else {
            outside.as_os_str().as_bytes().to_vec()
        };
        let mut tar = TarBuilder::new().file("fine", b"ok").symlink(link, target);
        tar = if entry.ends_with('/') {
            tar.dir(entry)
        } else {
            tar.file(entry, b"x")
        };
        assert_tar_refused(&sandbox, tar.finish(), entry, &outside);
        assert!(
            !outside.join("made").exists(),
            "{entry} made a directory outside"
        );
    }
}

/// CVE-2026-33056 / RUSTSEC-2026-0067 (and containerd's CVE-2021-32760): a symlink to a
/// directory outside, then a directory entry of the same name, must not chmod or chown the
/// directory outside; the entry replaces the symlink with a directory of the layer's own.
#[test]
fn cve_2026_33056_directory_entry_over_a_symlink_does_not_chmod_outside() {
    let sandbox = Sandbox::new("symlink-chmod");
    let outside = sandbox.outside();
    let victim = outside.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut dir = TarEntry::new("d", tar::EntryType::Directory);
    dir.mode = 0o777;
    dir.uid = 4242;
    dir.gid = 4242;
    let mut rel = dir.clone();
    rel.name = b"r".to_vec();
    let tar = TarBuilder::new()
        .symlink("d", victim.as_os_str().as_bytes())
        .entry(dir)
        .symlink("r", climbing_to(&victim))
        .entry(rel)
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "evil/chmod", &[tar]);
    let meta = std::fs::metadata(&victim).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700, "victim chmodded");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "victim chowned");
    let diff = layer_diff(&sandbox, &image, 0);
    for name in ["d", "r"] {
        let meta = std::fs::symlink_metadata(diff.join(name)).unwrap();
        assert!(meta.is_dir(), "{name} is still a symlink");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o777);
        assert_eq!(meta.uid(), 4242);
    }
}

/// Hardlinks to symlinks link the symlink itself (never what it points at), and symlink loops
/// end in a refusal, not a hang or a write outside.
#[test]
fn case_6_hardlink_to_a_symlink_and_symlink_loops() {
    let sandbox = Sandbox::new("hardlink-symlink");
    let outside = sandbox.outside();
    let secret = outside.join("secret");
    std::fs::write(&secret, b"secret").unwrap();
    let tar = TarBuilder::new()
        .symlink("sym", secret.as_os_str().as_bytes())
        .hardlink("hard", "sym")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "evil/hl-sym", &[tar]);
    let diff = layer_diff(&sandbox, &image, 0);
    let hard = std::fs::symlink_metadata(diff.join("hard")).unwrap();
    assert!(
        hard.file_type().is_symlink(),
        "the hardlink is not of the symlink"
    );
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);

    // Writing through the hardlinked symlink is refused like through any symlink.
    let tar = TarBuilder::new()
        .symlink("sym", outside.as_os_str().as_bytes())
        .hardlink("hard", "sym")
        .file("hard/secret", b"overwritten")
        .finish();
    assert_tar_refused(&sandbox, tar, "hard/secret", &outside);

    // Loops: two symlinks naming each other, a self-link, a hardlink to itself.
    let tar = TarBuilder::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"loop")
        .finish();
    assert_tar_refused(&sandbox, tar, "a/x", &outside);
    let tar = TarBuilder::new()
        .symlink("self", "self")
        .file("self/x", b"loop")
        .finish();
    assert_tar_refused(&sandbox, tar, "self/x", &outside);
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .hardlink("h", "h")
        .finish();
    assert_tar_refused(&sandbox, tar, "h", &outside);
    assert_eq!(std::fs::read(&secret).unwrap(), b"secret");
}

// ---------------------------------------------------------------------------------------------
// 7–10: whiteouts and overlayfs metadata
// ---------------------------------------------------------------------------------------------

/// An opaque marker hides the lower layers' entries of its directory, never the entries of its
/// own layer, wherever in the tar it comes (here after them).
#[test]
fn case_8_opaque_marker_after_same_layer_files() {
    let sandbox = Sandbox::new("opaque-after");
    let lower = TarBuilder::new()
        .dir("opq")
        .file("opq/old", b"from the lower layer")
        .finish();
    let upper = TarBuilder::new()
        .dir("opq")
        .file("opq/new", b"new in this layer")
        .dir("opq/sub")
        .file("opq/sub/deep", b"deep")
        .file("opq/.wh..wh..opq", b"")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "ok/opaque", &[lower, upper]);
    let diff = layer_diff(&sandbox, &image, 1);
    assert_eq!(
        lgetxattr(&diff.join("opq"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        names_in(&diff.join("opq")),
        BTreeSet::from(["new".to_string(), "sub".to_string()])
    );
    assert_eq!(std::fs::read(diff.join("opq/sub/deep")).unwrap(), b"deep");
    assert!(layer_diff(&sandbox, &image, 0).join("opq/old").is_file());
}

/// A whiteout then the same name again in one layer: the later entry is what the layer holds
/// (a file, not the whiteout), over a lower layer's file of that name.
#[test]
fn case_9_whiteout_then_re_add() {
    let sandbox = Sandbox::new("whiteout-readd");
    let lower = TarBuilder::new()
        .file("x", b"old")
        .dir("d")
        .file("d/old", b"old")
        .finish();
    let upper = TarBuilder::new()
        .file(".wh.x", b"")
        .file("x", b"new")
        .file(".wh.d", b"")
        .dir("d")
        .file("d/new", b"new")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "ok/readd", &[lower, upper]);
    let diff = layer_diff(&sandbox, &image, 1);
    let x = std::fs::symlink_metadata(diff.join("x")).unwrap();
    assert!(x.is_file(), "x is {:?}", x.file_type());
    assert_eq!(std::fs::read(diff.join("x")).unwrap(), b"new");
    assert!(std::fs::symlink_metadata(diff.join("d")).unwrap().is_dir());
    assert_eq!(
        names_in(&diff.join("d")),
        BTreeSet::from(["new".to_string()])
    );
}

/// overlayfs reads its own metadata from `trusted.overlay.*` xattrs (opaque, redirect,
/// metacopy, origin): a layer must not be able to set them through pax records; other
/// `trusted.*` xattrs are kept.
#[test]
fn case_10_forged_overlay_xattrs_are_stripped() {
    let sandbox = Sandbox::new("forged-xattrs");
    let forged: [(&str, &[u8]); 5] = [
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("SCHILY.xattr.trusted.overlay.metacopy", b""),
        ("SCHILY.xattr.trusted.overlay.origin", b"\0\xfb"),
        ("SCHILY.xattr.trusted.berth-test", b"1"),
    ];
    let tar = TarBuilder::new()
        .pax(&forged)
        .dir("xdir")
        .pax(&forged)
        .file("xfile", b"data")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "evil/xattrs", &[tar]);
    let diff = layer_diff(&sandbox, &image, 0);
    for name in ["xdir", "xfile"] {
        for attr in ["opaque", "redirect", "metacopy", "origin"] {
            assert_eq!(
                lgetxattr(&diff.join(name), &format!("trusted.overlay.{attr}")),
                None,
                "{name} got trusted.overlay.{attr}"
            );
        }
        assert_eq!(
            lgetxattr(&diff.join(name), "trusted.berth-test"),
            Some(b"1".to_vec())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11–13: confusing or exhausting the reader
// ---------------------------------------------------------------------------------------------

/// RUSTSEC-2026-0068: a pax `size` record that disagrees with the header's size makes readers
/// disagree about where the next header starts (one sees file data where another sees an
/// entry): refused rather than guessed.
#[test]
fn rustsec_2026_0068_pax_size_disagreeing_with_the_header_is_refused() {
    let sandbox = Sandbox::new("pax-size");
    let outside = sandbox.outside();
    // The data of `smuggler` is itself a tar header for `../escape`, seen only by a reader
    // that takes the pax size (0) over the header's (1024).
    let hidden = TarBuilder::new().file("../escape", b"escaped").finish();
    let mut smuggler = TarEntry::new("smuggler", tar::EntryType::Regular);
    smuggler.data = hidden[..1024].to_vec();
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .pax(&[("size", b"0")])
        .entry(smuggler)
        .finish();
    let line = assert_layer_refused(
        &sandbox,
        tar,
        &["smuggler", "pax size records are not supported"],
        &outside,
    );
    assert!(line.contains("invalid tar archive"), "{line}");
}

/// A pax `path` and a GNU long name on one entry: the pax path wins (as in Go's archive/tar,
/// which Docker uses), and whichever is used must be safe: an unsafe pax path behind a
/// harmless long name is refused; an unsafe long name overridden by a harmless pax path
/// writes the harmless name only.
#[test]
fn case_11_pax_path_and_gnu_long_name_together() {
    let sandbox = Sandbox::new("pax-gnu");
    let outside = sandbox.outside();
    let escape = climbing_to(&outside.join("escape"));
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .gnu_long_name("harmless")
        .pax(&[("path", escape.as_bytes())])
        .file("short", b"escaped")
        .finish();
    assert_tar_refused(&sandbox, tar, &escape, &outside);

    let tar = TarBuilder::new()
        .pax(&[("path", b"harmless")])
        .gnu_long_name(&escape)
        .file("short", b"kept")
        .finish();
    let (_registry, image, _) = pull_layers(&sandbox, "evil/pax-gnu", &[tar]);
    let diff = layer_diff(&sandbox, &image, 0);
    assert_eq!(std::fs::read(diff.join("harmless")).unwrap(), b"kept");
    assert_eq!(names_in(&diff), BTreeSet::from(["harmless".to_string()]));
    assert_eq!(names_in(&outside), BTreeSet::new());
}

/// A 2 MiB pax header (and a 2 MiB GNU long name) is refused before it is buffered.
#[test]
fn case_12_two_mib_pax_header_is_refused() {
    let sandbox = Sandbox::new("pax-2mib");
    let outside = sandbox.outside();
    let big = vec![b'a'; 2 << 20];
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .pax(&[("comment", &big)])
        .file("after", b"x")
        .finish();
    assert_layer_refused(
        &sandbox,
        tar,
        &["tar header of", "exceeds the limit"],
        &outside,
    );
    let tar = TarBuilder::new()
        .file("fine", b"ok")
        .gnu_long_name(&big)
        .file("after", b"x")
        .finish();
    assert_layer_refused(
        &sandbox,
        tar,
        &["tar header of", "exceeds the limit"],
        &outside,
    );
}

/// A layer of a million entries (20 000 directories with a file each, the rest one directory
/// over and over) unpacks in bounded time and memory: nothing is kept per entry, and no
/// descriptor per directory (berth runs with the usual limit of 1024 open files).
#[test]
fn case_12_a_million_entries() {
    const DIRS: usize = 20_000;
    const TOTAL: usize = 1_000_000;
    let sandbox = Sandbox::new("million");
    let mut tar = TarBuilder::new();
    for i in 0..DIRS {
        tar = tar.dir(format!("d{i}")).file(format!("d{i}/f"), b"");
    }
    for _ in 0..TOTAL - 2 * DIRS {
        tar = tar.dir("same");
    }
    let tar = tar.finish();
    let (registry, image) = serve("ok/million", &[tar]);
    let reference = registry.reference("ok/million:latest");
    let mut cmd = sandbox.command(&["pull", &reference]);
    // The usual soft limit of open files, whatever this machine's is.
    // SAFETY: setrlimit only, in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    wait_outcome(cmd.spawn().unwrap(), &["pull", &reference]).assert_ok();
    let took = started.elapsed();
    assert_pulled(&sandbox, &reference, &image);
    eprintln!("a million entries pulled in {took:?}");
    assert!(took < Duration::from_secs(80), "took {took:?}");
    let diff = layer_diff(&sandbox, &image, 0);
    assert_eq!(std::fs::read_dir(&diff).unwrap().count(), DIRS + 1);
    assert!(diff.join(format!("d{}/f", DIRS - 1)).is_file());
}

/// Decompression bombs: a small gzip or zstd blob that expands beyond the layer size limit is
/// cut off there, whatever the tar inside says (the limit is lowered for the test through
/// `BERTH_MAX_LAYER_BYTES`).
#[test]
fn case_13_gzip_and_zstd_bombs_are_cut_off() {
    let sandbox = Sandbox::new("bomb");
    let outside = sandbox.outside();
    let mut zeros = TarEntry::new("zeros", tar::EntryType::Regular);
    zeros.data = vec![0u8; 64 << 20];
    let bomb = TarBuilder::new().entry(zeros).finish();
    for layer in [Layer::gzip(&bomb), Layer::zstd(&bomb)] {
        assert!(layer.blob.len() < 1 << 20, "not much of a bomb");
        let image = image_from_layers(vec![layer], "amd64");
        let registry = common::fault_registry::FaultRegistry::start();
        registry.push_image("evil/bomb", "latest", &image);
        let mut cmd = sandbox.command(&["pull", &registry.reference("evil/bomb:latest")]);
        cmd.env("BERTH_MAX_LAYER_BYTES", (16u64 << 20).to_string());
        let outcome = common::sandbox::wait_outcome(cmd.spawn().unwrap(), &["pull", "bomb"]);
        outcome.assert_fails(&["layer expands beyond 16777216 bytes"]);
        common::sandbox::assert_clean_after_failure(&sandbox, &registry, &image, &[]);
        assert_eq!(names_in(&outside), BTreeSet::new());
    }
}

// ---------------------------------------------------------------------------------------------
// 14: device nodes
// ---------------------------------------------------------------------------------------------

/// Device nodes and fifos in a layer are created in the store (a layer may carry them), but a
/// container cannot use a device node it was not given: the device cgroup refuses the host's
/// disk and memory even through a node the image brought.
#[test]
fn case_14_device_nodes_from_a_layer_are_unusable_in_the_container() {
    let sandbox = Sandbox::new("devices");
    let tar = busybox_rootfs()
        .device("evil-sda", tar::EntryType::Block, 8, 0)
        .device("evil-mem", tar::EntryType::Char, 1, 1)
        .device("evil-null", tar::EntryType::Char, 1, 3)
        .fifo("evil-fifo")
        .finish();
    let (_registry, image, reference) = pull_layers(&sandbox, "evil/devices", &[tar]);
    let diff = layer_diff(&sandbox, &image, 0);
    let sda = std::fs::symlink_metadata(diff.join("evil-sda")).unwrap();
    assert!(sda.file_type().is_block_device());
    assert_eq!(sda.rdev(), libc::makedev(8, 0));
    assert!(
        std::fs::symlink_metadata(diff.join("evil-fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let outcome = sandbox.run(&[
        "run",
        "--rm",
        &reference,
        "sh",
        "-c",
        "for d in /evil-sda /evil-mem; do head -c1 $d >/dev/null && echo $d=read; done; \
         echo x > /evil-null && echo null=written; true",
    ]);
    outcome.assert_ok();
    assert_eq!(outcome.stdout, "null=written\n", "{}", outcome.stderr);
    assert_eq!(
        outcome.stderr.matches("Operation not permitted").count(),
        2,
        "{}",
        outcome.stderr
    );
}
