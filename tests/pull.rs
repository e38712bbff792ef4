//! `berth pull` against the real fixture registries (CNCF distribution: anonymous, htpasswd,
//! token auth) and the fixture images built offline by tests/fixtures/setup.sh.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::image_tree::{Overlay, assert_multilayer_tree, layer_dirs};
use common::store::{image_id, repositories};
use common::{ANON, BASIC, PASSWORD, TOKEN, TestRoot, USER, fixtures};

#[test]
fn every_fixture_image_pulls_by_tag_and_digest_from_each_registry() {
    fixtures();
    let images = [
        "busybox:latest",
        "debian:bookworm",
        "nginx:latest",
        "multilayer:latest",
        "multilayer:oci",
        "multilayer:zstd",
        "multiarch:latest",
    ];
    for registry in [ANON, BASIC, TOKEN] {
        let root = TestRoot::new(&format!("pull-all-{}", registry.replace([':', '.'], "-")));
        if registry != ANON {
            root.login_file(registry, USER, PASSWORD);
        }
        for image in images {
            let name = format!("{registry}/{image}");
            let out = root.ok(&["pull", &name]);
            assert!(
                out.contains(&format!("Status: Downloaded newer image for {name}")),
                "{out}"
            );
            assert!(out.ends_with(&format!("{name}\n")), "{out}");
            let digest = out
                .lines()
                .find_map(|l| l.strip_prefix("Digest: "))
                .expect("Digest line")
                .to_string();
            // By digest, into a fresh store: the same image ID.
            let by_digest = TestRoot::new(&format!(
                "pull-digest-{}",
                registry.replace([':', '.'], "-")
            ));
            if registry != ANON {
                by_digest.login_file(registry, USER, PASSWORD);
            }
            let repo = name.rsplit_once(':').unwrap().0;
            let out = by_digest.ok(&["pull", "-q", &format!("{repo}@{digest}")]);
            assert_eq!(out, format!("{repo}@{digest}\n"));
            let record_of_tag = image_id(&root, &name);
            let hex = record_of_tag.strip_prefix("sha256:").unwrap();
            assert!(
                by_digest.path.join(format!("images/{hex}.json")).exists(),
                "{name} by digest"
            );
        }
        // Everything again: nothing to download.
        let out = root.ok(&["pull", &format!("{registry}/multilayer:latest")]);
        assert!(out.contains("Already exists"), "{out}");
        assert!(out.contains("Status: Image is up to date for"), "{out}");
    }
}

#[test]
fn multilayer_variants_overlay_to_the_expected_tree() {
    fixtures();
    let root = TestRoot::new("pull-multilayer");
    for tag in ["latest", "oci", "zstd"] {
        let name = format!("{ANON}/multilayer:{tag}");
        root.ok(&["pull", "-q", &name]);
        let id = image_id(&root, &name);
        let overlay = Overlay::mount(&root, &id, tag);
        assert_multilayer_tree(&overlay.target);
    }
    // Shared lower layers are stored once: three images, one busybox layer among them.
    let layers = std::fs::read_dir(root.path.join("layers")).unwrap().count();
    let mut distinct = std::collections::BTreeSet::new();
    for tag in ["latest", "oci", "zstd"] {
        let id = image_id(&root, &format!("{ANON}/multilayer:{tag}"));
        distinct.extend(layer_dirs(&root, &id));
    }
    assert_eq!(layers, distinct.len());
}

#[test]
fn index_resolves_to_the_host_platform_or_the_asked_one() {
    fixtures();
    let root = TestRoot::new("pull-index");
    let name = format!("{ANON}/multiarch:latest");
    root.ok(&["pull", "-q", &name]);
    let id = image_id(&root, &name);
    let overlay = Overlay::mount(&root, &id, "amd64");
    assert_eq!(
        std::fs::read_to_string(overlay.target.join("arch"))
            .unwrap()
            .trim(),
        "amd64"
    );
    drop(overlay);

    let arm = TestRoot::new("pull-index-arm");
    arm.ok(&["pull", "-q", "--platform", "linux/arm64", &name]);
    let id = image_id(&arm, &name);
    let overlay = Overlay::mount(&arm, &id, "arm64");
    assert_eq!(
        std::fs::read_to_string(overlay.target.join("arch"))
            .unwrap()
            .trim(),
        "arm64"
    );
    drop(overlay);

    let err = arm.fails(&["pull", "--platform", "linux/s390x", &name], 1);
    assert!(
        err.contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );
}

#[test]
fn authentication_failures_are_clear() {
    fixtures();
    let root = TestRoot::new("pull-auth");
    // Basic-auth registry without credentials, and with wrong ones.
    let err = root.fails(&["pull", &format!("{BASIC}/busybox")], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: Get \"http://127.0.0.1:5001/v2/busybox/manifests/latest\": no basic auth credentials"
    );
    root.login_file(BASIC, USER, "wrong");
    let err = root.fails(&["pull", &format!("{BASIC}/busybox")], 1);
    assert!(err.contains("pull access denied"), "{err}");

    // Token registry: anonymous pull of public images works; private ones need credentials.
    let anon = TestRoot::new("pull-token-anon");
    anon.ok(&["pull", "-q", &format!("{TOKEN}/busybox")]);
    let err = anon.fails(&["pull", &format!("{TOKEN}/private/busybox")], 1);
    assert!(
        err.contains("pull access denied for 127.0.0.1:5002/private/busybox"),
        "{err}"
    );
    anon.login_file(TOKEN, USER, "wrong");
    let err = anon.fails(&["pull", &format!("{TOKEN}/busybox")], 1);
    assert!(err.contains("pull access denied"), "{err}");
    anon.login_file(TOKEN, USER, PASSWORD);
    anon.ok(&["pull", "-q", &format!("{TOKEN}/private/busybox")]);
    assert_eq!(
        image_id(&anon, &format!("{TOKEN}/private/busybox:latest")),
        image_id(&anon, &format!("{TOKEN}/busybox:latest"))
    );
}

#[test]
fn missing_tags_and_repositories() {
    fixtures();
    let root = TestRoot::new("pull-missing");
    let err = root.fails(&["pull", &format!("{ANON}/busybox:nope")], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: manifest for 127.0.0.1:5000/busybox:nope not found: manifest unknown: manifest unknown"
    );
    // The CNCF registry answers MANIFEST_UNKNOWN for unknown repositories too; Docker then
    // says the same as for an unknown tag.
    let err = root.fails(&["pull", &format!("{ANON}/does-not-exist")], 1);
    assert!(
        err.contains("manifest for 127.0.0.1:5000/does-not-exist:latest not found"),
        "{err}"
    );
    assert!(
        !root.path.join("repositories.json").exists()
            || repositories(&root)["tags"].as_object().unwrap().is_empty()
    );
}

#[test]
fn bad_references_are_refused_before_any_network() {
    let root = TestRoot::new("pull-badref");
    let err = root.fails(&["pull", "UPPER"], 1);
    assert_eq!(
        err.trim(),
        "invalid reference format: repository name (library/UPPER) must be lowercase"
    );
    for bad in ["a:-x", "a b", "a//b", "host:port/x", "a@sha256:abc"] {
        let err = root.fails(&["pull", bad], 1);
        assert!(err.starts_with("invalid reference format"), "{bad}: {err}");
    }
    let err = root.fails(&["pull", "-a", "busybox:1"], 1);
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );
    // Flag errors are the one failure `docker pull` exits 125 for.
    let err = root.fails(&["pull", "--bogus", "busybox"], 125);
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn all_tags_and_quiet() {
    fixtures();
    let root = TestRoot::new("pull-all-tags");
    let out = root.ok(&["pull", "-a", &format!("{ANON}/multilayer")]);
    for tag in ["latest", "oci", "zstd"] {
        assert!(
            out.contains(&format!("{tag}: Pulling from multilayer")),
            "{out}"
        );
        image_id(&root, &format!("{ANON}/multilayer:{tag}"));
    }
    assert!(out.ends_with("127.0.0.1:5000/multilayer\n"), "{out}");
    let out = root.ok(&["pull", "-q", &format!("{ANON}/busybox")]);
    assert_eq!(out, "127.0.0.1:5000/busybox:latest\n");
}

#[test]
fn a_moved_tag_leaves_the_old_image_dangling() {
    fixtures();
    let root = TestRoot::new("pull-moved");
    let repo = format!("{ANON}/moving-{}", std::process::id());
    let copy = |from: &str| {
        let status = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{ANON}/{from}"))
            .arg(format!("docker://{repo}:v1"))
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy("busybox:latest");
    root.ok(&["pull", "-q", &format!("{repo}:v1")]);
    let first = image_id(&root, &format!("{repo}:v1"));
    copy("multilayer:latest");
    let out = root.ok(&["pull", &format!("{repo}:v1")]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    let second = image_id(&root, &format!("{repo}:v1"));
    assert_ne!(first, second);
    // The old image is still stored, but no tag names it any more.
    let hex = first.strip_prefix("sha256:").unwrap();
    assert!(root.path.join(format!("images/{hex}.json")).exists());
    let tags: BTreeMap<String, String> =
        serde_json::from_value(repositories(&root)["tags"].clone()).unwrap();
    assert!(!tags.values().any(|v| *v == first), "{tags:?}");
}
