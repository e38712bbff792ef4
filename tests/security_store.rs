//! Security checklist, store cases 41–46 (docs/SECURITY.md): the store stays consistent
//! whatever happens to the commands working on it (kill -9 at any point of a pull, concurrent
//! pulls, removal racing a pull, a full disk) and refuses to remove what a container uses;
//! its root is private. Never a partial object visible, references recorded before use, a
//! crash leaving only unreferenced garbage that the next command sweeps. Tests are named after
//! the advisory they guard against, else `case_N_…`.
//!
//! Run as root: `cargo test --release --test security_store`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use common::fault_registry::{
    Fault, FaultRegistry, Layer, TarBuilder, TarEntry, build_image, image_from_layers,
};
use common::image_tree::{Overlay, assert_multilayer_tree};
use common::lab::Lab;
use common::sandbox::{
    Sandbox, assert_pulled, names_in, noisy_layer, serve, small_layer, wait_outcome,
};
use common::store::image_id;
use common::{ANON, BUSYBOX, TestRoot, fixtures};

#[test]
fn case_41_kill_during_download_then_pull_again() {
    let sandbox = Sandbox::new("kill9");
    let size = 96 * 1024;
    let (registry, image) = serve("ok/kill", &[noisy_layer("big", size, 13)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("ok/kill", &layer.digest);
    registry.set_fault(
        &path,
        Fault {
            slow: Some((2048, Duration::from_millis(25))),
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/kill:latest");
    let mut child = sandbox.spawn_pull(&reference);
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.sent(&path) < 16 * 1024 {
        assert!(Instant::now() < deadline, "the download never got going");
        assert!(child.try_wait().unwrap().is_none(), "berth ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill -9 berth");
    child.wait().unwrap();
    assert!(registry.sent(&path) < layer.blob.len(), "killed too late");

    // The killed run left its work behind…
    let root = sandbox.root();
    assert!(!root.join("layers").join(layer.diff_hex()).exists());
    let blob_hex = layer.digest.trim_start_matches("sha256:");
    assert!(
        names_in(&root.join("tmp"))
            .iter()
            .any(|n| n.starts_with(".tmp-") && !n.ends_with(blob_hex)),
        "no work dir in tmp/ from the killed pull"
    );
    assert!(
        names_in(&root.join("tmp"))
            .iter()
            .any(|n| n.starts_with(".tmp-") && n.ends_with(blob_hex)),
        "no temp blob from the killed pull"
    );

    // …which the next successful pull sweeps.
    registry.clear_fault(&path);
    sandbox.pull(&reference).assert_ok();
    assert_eq!(names_in(&root.join("tmp")), BTreeSet::new());
    assert_eq!(
        names_in(&root.join("layers")),
        BTreeSet::from([layer.diff_hex().to_string()])
    );
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn case_42_ten_concurrent_pulls_share_a_layer() {
    let sandbox = Sandbox::new("concurrent");
    let registry = FaultRegistry::start();
    let shared = Layer::gzip(&noisy_layer("shared", 64 * 1024, 14));
    let only_a = Layer::gzip(&small_layer("only in a"));
    let only_b = Layer::gzip(&small_layer("only in b"));
    let a = image_from_layers(vec![shared.clone(), only_a.clone()], "amd64");
    let b = image_from_layers(vec![shared.clone(), only_b.clone()], "amd64");
    registry.push_image("con/a", "latest", &a);
    registry.push_image("con/b", "latest", &b);
    let slow = Fault {
        slow: Some((4096, Duration::from_millis(30))),
        ..Fault::default()
    };
    for repo in ["con/a", "con/b"] {
        registry.set_fault(
            &FaultRegistry::blob_path(repo, &shared.digest),
            slow.clone(),
        );
    }
    let (ref_a, ref_b) = (
        registry.reference("con/a:latest"),
        registry.reference("con/b:latest"),
    );
    // Ten at once, five of each image.
    let pulls: Vec<_> = (0..10)
        .map(|i| {
            let reference = if i % 2 == 0 { &ref_a } else { &ref_b };
            (reference, sandbox.spawn_pull(reference))
        })
        .collect();
    for (reference, child) in pulls {
        wait_outcome(child, &["pull", reference]).assert_ok();
    }

    assert_pulled(&sandbox, &ref_a, &a);
    assert_pulled(&sandbox, &ref_b, &b);
    assert_eq!(
        names_in(&sandbox.root().join("layers")),
        BTreeSet::from([
            shared.diff_hex().to_string(),
            only_a.diff_hex().to_string(),
            only_b.diff_hex().to_string(),
        ])
    );
    let shared_gets = registry
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/blobs/{}", shared.digest)))
        .count();
    assert_eq!(shared_gets, 1, "the shared layer was downloaded twice");
}

#[test]
fn cve_2021_41091_store_root_is_private() {
    fixtures();
    let root = TestRoot::new("pull-mode");
    root.ok(&["pull", "-q", &format!("{ANON}/busybox")]);
    let mode = std::fs::metadata(&root.path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// `kill -9` of berth at many points of a pull (download, unpack, index write): afterwards
/// the next command works, the next pull completes, and nothing half-written is named.
#[test]
fn case_41_kill_at_any_point_of_a_pull_leaves_a_usable_store() {
    fixtures();
    let root = TestRoot::new("pull-kill-anywhere");
    let image = format!("{ANON}/multilayer:latest");
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80, 120, 200] {
        let mut child = root.berth(&["pull", "-q", &image]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever exists is complete: every named layer has its record, every blob its digest.
        for entry in std::fs::read_dir(root.path.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
                assert!(
                    entry.path().join("layer.json").exists(),
                    "{:?}",
                    entry.path()
                );
            }
        }
        for entry in std::fs::read_dir(root.path.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            use sha2::Digest as _;
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                name,
                "blob {name}"
            );
        }
        if root.path.join("repositories.json").exists() {
            let _: serde_json::Value = serde_json::from_slice(
                &std::fs::read(root.path.join("repositories.json")).unwrap(),
            )
            .expect("the index is always whole");
        }
    }
    root.ok(&["pull", "-q", &image]);
    let id = image_id(&root, &image);
    let overlay = Overlay::mount(&root, &id, "after-kills");
    assert_multilayer_tree(&overlay.target);
    drop(overlay);
    // The successful pull swept every abandoned temp entry.
    let leftovers: Vec<_> = std::fs::read_dir(root.path.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn case_43_rmi_racing_a_pull_of_an_image_sharing_layers() {
    fixtures();
    let root = TestRoot::new("images-race");
    let busybox = format!("{ANON}/busybox:latest");
    let multilayer = format!("{ANON}/multilayer:latest");
    for round in 0..6 {
        root.ok(&["pull", "-q", &busybox]);
        // multilayer's base layer is busybox's: pull it while busybox is removed.
        let (rmi, pull) = std::thread::scope(|s| {
            let pull = s.spawn(|| root.berth(&["pull", "-q", &multilayer]).output().unwrap());
            if round % 2 == 1 {
                std::thread::sleep(std::time::Duration::from_millis(20 * round));
            }
            let rmi = root.run(&["rmi", &busybox]);
            (rmi, pull.join().unwrap())
        });
        assert!(
            rmi.status.success(),
            "{}",
            String::from_utf8_lossy(&rmi.stderr)
        );
        assert!(
            pull.status.success(),
            "{}",
            String::from_utf8_lossy(&pull.stderr)
        );
        // Every indexed image has every layer.
        let repos: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.path.join("repositories.json")).unwrap())
                .unwrap();
        for (id, summary) in repos["images"].as_object().unwrap() {
            for layer in summary["layers"].as_array().unwrap() {
                let hex = &layer.as_str().unwrap()[7..];
                assert!(
                    root.path
                        .join("layers")
                        .join(hex)
                        .join("layer.json")
                        .exists(),
                    "round {round}: image {id} lost layer {hex}"
                );
            }
        }
        assert_eq!(root.ok(&["images", "-q"]).lines().count(), 1);
        root.ok(&["rmi", &multilayer]);
        assert_eq!(
            std::fs::read_dir(root.path.join("layers")).unwrap().count(),
            0
        );
    }
}

/// Docker's rules for removing an image a container uses, by ID: refused even with `-f` while
/// the container runs, refused without `-f` while it is stopped; the image stays whole.
#[test]
fn case_44_rmi_of_an_image_in_use() {
    let lab = Lab::new("rmi-in-use");
    let image = image_id(&lab, &format!("{ANON}/busybox:latest"));
    let short = &image[7..19];
    let id = lab.run_d(&["--name", "user", BUSYBOX, "sleep", "1000"]);
    let cid = &id[..12];
    for args in [vec!["rmi", short], vec!["rmi", "-f", short]] {
        let out = lab.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "Error response from daemon: conflict: unable to delete {short} (cannot be forced) - image is being used by running container {cid}\n"
            ),
            "{args:?}"
        );
    }
    lab.ok(&["stop", "-t", "0", "user"]);
    let out = lab.run(&["rmi", short]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Error response from daemon: conflict: unable to delete {short} (must be forced) - image is being used by stopped container {cid}\n"
        )
    );
    // Still whole: the stopped container starts again.
    assert_eq!(lab.ok(&["images", "-q"]).trim(), short);
    lab.ok(&["start", "user"]);
    lab.ok(&["rm", "-f", "user"]);
}

/// A full disk while a layer downloads or unpacks: the pull fails with one line naming the
/// cause, nothing of it is visible, the next command sweeps its temp data, and what the store
/// held still works.
#[test]
fn case_45_enospc_during_download_and_extract() {
    let lab = Lab::on_tmpfs("enospc", 48);
    let registry = FaultRegistry::start();
    // Unpacking fills the disk: 96 MiB of zeros, a blob of about 100 KiB.
    let mut zeros = TarEntry::new("zeros", tar::EntryType::Regular);
    zeros.data = vec![0u8; 96 << 20];
    let unpack = build_image(&[TarBuilder::new().entry(zeros).finish()]);
    registry.push_image("full/unpack", "latest", &unpack);
    // Downloading fills the disk: 64 MiB that do not compress.
    let download = build_image(&[noisy_layer("noise", 64 << 20, 45)]);
    registry.push_image("full/download", "latest", &download);

    for (repo, image) in [("full/unpack", &unpack), ("full/download", &download)] {
        let out = lab.run(&["pull", &registry.reference(&format!("{repo}:latest"))]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{repo}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "{repo}: {stderr}");
        assert!(
            lines[0].contains("No space left on device"),
            "{repo}: {stderr}"
        );
        // The next command sweeps what the failed pull left.
        lab.ok(&["run", "--rm", BUSYBOX, "true"]);
        assert_eq!(names_in(&lab.path.join("tmp")), BTreeSet::new(), "{repo}");
        for layer in &image.layers {
            assert!(!lab.path.join("layers").join(layer.diff_hex()).exists());
            assert!(
                !lab.path
                    .join("blobs/sha256")
                    .join(&layer.digest[7..])
                    .exists()
            );
        }
        let images = lab.ok(&["images", "--format", "{{.Repository}}"]);
        assert_eq!(images.trim(), format!("{ANON}/busybox"), "{repo}");
    }
}

/// CVE-2021-41091: a running container's files (its root file system's upper directory, any
/// mount of it on the host, its runtime state) lie below a directory other users cannot
/// traverse, so no unprivileged host user reaches its setuid files (the store root's own mode: `cve_2021_41091_store_root_is_private`).
#[test]
fn cve_2021_41091_container_files_are_not_reachable_by_other_users() {
    let lab = Lab::new("private-mounts");
    let id = lab.run_d(&[
        "--name",
        "ct",
        BUSYBOX,
        "sh",
        "-c",
        "cp /bin/busybox /suid && chmod 4755 /suid && exec sleep 1000",
    ]);
    let guarded = |path: &Path| {
        path.ancestors().any(|dir| {
            std::fs::metadata(dir)
                .is_ok_and(|m| m.uid() == 0 && m.permissions().mode() & 0o001 == 0)
        })
    };
    // The root file system is mounted in the container's mount namespace only; were anything
    // of the container mounted on the host, it would have to be as guarded.
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.contains(&id))
        .collect();
    for mount in &mounts {
        assert!(
            guarded(Path::new(mount).parent().unwrap()),
            "{mount} is reachable by every user"
        );
    }
    // The container's own files (its upper directory, where /suid now is) and its runtime
    // state.
    let find_suid = || -> Vec<std::path::PathBuf> {
        common::sandbox::walk(&lab.container_dir(&id))
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "suid"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while find_suid().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let suid = find_suid();
    assert!(
        !suid.is_empty(),
        "the container's /suid is not in its directory"
    );
    for path in suid.iter().map(|p| p.as_path()).chain([
        lab.container_dir(&id).as_path(),
        Path::new("/run/berth").join(&id).as_path(),
    ]) {
        if path.exists() {
            assert!(
                guarded(path),
                "{} is reachable by every user",
                path.display()
            );
        }
    }
    lab.ok(&["rm", "-f", "ct"]);
}
