//! `berth pull` against a misbehaving registry (tests/common/fault_registry.rs): every bad input
//! or fault must end as Docker's refused pull does (exit 1, one "Error response from daemon: …"
//! line on stderr) with an intact store, and recoverable faults must be recovered from;
//! whiteouts and file metadata of a good layer are unpacked faithfully. The faults a registry or a layer could use against the host (the
//! security checklist's registry and unpack cases) are in security_registry.rs and
//! security_unpack.rs, on the same harness (tests/common/sandbox.rs).
//!
//! Run as root: `cargo test --test pull_faults`.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::fault_registry::{
    DOCKER_MANIFEST, Fault, FaultRegistry, Image, TarBuilder, TarEntry, build_image, flip_byte,
    sha256,
};
use common::sandbox::{
    Outcome, SHORT_LIMIT, Sandbox, assert_clean_after_failure, assert_layer_present,
    assert_manifest_refused, assert_pulled, assert_store_intact, hex, lgetxattr, noisy_layer,
    pull_good, serve, small_layer,
};

// ---------------------------------------------------------------------------------------------
// 1–2: digest mismatches
// ---------------------------------------------------------------------------------------------

#[test]
fn layer_digest_mismatch_reports_the_served_digest() {
    let sandbox = Sandbox::new("layer-digest-got");
    let (registry, image) = serve("bad/layer", &[noisy_layer("only", 4096, 2)]);
    let layer = &image.layers[0];
    let served = flip_byte(&layer.blob, 4);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/layer", &layer.digest),
        Fault {
            replace_body: Some(served.clone()),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/layer:latest"))
        .assert_fails(&[&format!(
            "digest mismatch for {0}: expected {0}, got {1}",
            layer.digest,
            sha256(&served)
        )]);
}

#[test]
fn layer_corrupted_mid_stream_is_a_digest_mismatch() {
    let sandbox = Sandbox::new("layer-corrupt");
    let (registry, image) = serve("bad/corrupt", &[noisy_layer("blob", 16 * 1024, 7)]);
    let layer = &image.layers[0];
    // A byte in the middle of the deflate data: the decoder (or its CRC check) fails first,
    // yet the error reported is the blob's digest mismatch.
    let served = flip_byte(&layer.blob, layer.blob.len() / 2);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/corrupt", &layer.digest),
        Fault {
            replace_body: Some(served.clone()),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/corrupt:latest"))
        .assert_fails(&[&format!(
            "digest mismatch for {0}: expected {0}, got {1}",
            layer.digest,
            sha256(&served)
        )]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

// ---------------------------------------------------------------------------------------------
// 3–6: broken downloads
// ---------------------------------------------------------------------------------------------

#[test]
fn blob_truncated_every_time_fails_after_retries() {
    let sandbox = Sandbox::new("truncated");
    let (registry, image) = serve("bad/trunc", &[noisy_layer("blob", 16 * 1024, 3)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("bad/trunc", &layer.digest);
    registry.set_fault(
        &path,
        Fault {
            truncate_at: Some(5000),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/trunc:latest"))
        .assert_fails(&[
            &layer.digest,
            &format!("after 5000 of {} bytes", layer.blob.len()),
        ]);
    let requests = registry.requests_to(&path);
    assert!(requests.len() > 1, "berth did not retry: {requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.range.as_deref() == Some("bytes=5000-")),
        "retries should resume at 5000: {requests:?}"
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

/// The attempt budget (5) is for a download that stopped making progress: a connection that
/// brought data resets it, so a blob whose every connection drops after a while still comes
/// through, in more resumes than the budget.
#[test]
fn blob_dropped_often_but_progressing_resumes_past_the_attempt_budget() {
    let sandbox = Sandbox::new("progressing");
    let (registry, image) = serve("ok/progressing", &[noisy_layer("blob", 32 * 1024, 5)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("ok/progressing", &layer.digest);
    let each = 4096;
    registry.set_fault(
        &path,
        Fault {
            truncate_each: Some(each),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("ok/progressing:latest"))
        .assert_ok();
    let requests = registry.requests_to(&path);
    assert!(
        requests.len() > 6 && requests.len() >= layer.blob.len().div_ceil(each),
        "{} requests for {} bytes: {requests:?}",
        requests.len(),
        layer.blob.len()
    );
}

/// Serves a layer whose responses advertise 1000 bytes more than they send, then close.
fn wrong_length_setup(name: &str) -> (Sandbox, FaultRegistry, Image, String) {
    let sandbox = Sandbox::new(name);
    let (registry, image) = serve("bad/length", &[noisy_layer("blob", 8 * 1024, 6)]);
    let path = FaultRegistry::blob_path("bad/length", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            extra_length: 1000,
            ..Fault::default()
        },
    );
    (sandbox, registry, image, path)
}

#[test]
fn wrong_content_length_fails_cleanly() {
    let (sandbox, registry, image, path) = wrong_length_setup("length");
    let outcome = sandbox.pull(&registry.reference("bad/length:latest"));
    // What berth does today: the whole blob arrives, then the connection closes short of the
    // advertised length; berth asks for the rest with `Range: bytes=<size>-`, which the registry
    // (like a real one) answers with 416, and the pull fails with the registry's error text.
    // If berth learns to recover (see `wrong_content_length_is_recovered`), this test checks a
    // success instead.
    if outcome.code == Some(0) {
        assert_pulled(&sandbox, &registry.reference("bad/length:latest"), &image);
        return;
    }
    outcome.assert_fails(&["range not satisfiable"]);
    let size = image.layers[0].blob.len();
    let requests: Vec<_> = registry
        .requests_to(&path)
        .iter()
        .map(|r| (r.range.clone(), r.status))
        .collect();
    assert_eq!(requests[0], (None, 200), "{requests:?}");
    assert!(requests.len() > 1, "{requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|r| *r == (Some(format!("bytes={size}-")), 416)),
        "{requests:?}"
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn wrong_content_length_is_recovered() {
    let (sandbox, registry, image, path) = wrong_length_setup("length-recovered");
    let reference = registry.reference("bad/length:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);
    assert!(registry.requests_to(&path).iter().all(|r| r.status != 416));
}

// ---------------------------------------------------------------------------------------------
// 7: retryable statuses
// ---------------------------------------------------------------------------------------------

#[test]
fn server_error_once_is_retried() {
    let sandbox = Sandbox::new("500");
    let (registry, image) = serve("ok/500", &[small_layer("500")]);
    let manifest = FaultRegistry::manifest_path("ok/500", "latest");
    let blob = FaultRegistry::blob_path("ok/500", &image.layers[0].digest);
    let once = Fault {
        fail_status: Some(500),
        fail_times: 1,
        ..Fault::default()
    };
    registry.set_fault(&manifest, once.clone());
    registry.set_fault(&blob, once);
    let reference = registry.reference("ok/500:latest");
    sandbox.pull(&reference).assert_ok();
    for path in [manifest, blob] {
        assert_eq!(
            registry
                .requests_to(&path)
                .iter()
                .map(|r| r.status)
                .collect::<Vec<_>>(),
            vec![500, 200],
            "{path}"
        );
    }
    assert_pulled(&sandbox, &reference, &image);
}

// ---------------------------------------------------------------------------------------------
// 8: redirects and credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_credentials_are_denied() {
    let sandbox = Sandbox::new("denied");
    let registry = FaultRegistry::start_with_basic_auth("user", "pass");
    registry.push_image("priv/img", "latest", &build_image(&[small_layer("denied")]));
    sandbox
        .pull(&registry.reference("priv/img:latest"))
        .assert_fails(&[&format!(
            "Get \"http://{}/v2/priv/img/manifests/latest\": no basic auth credentials",
            registry.host()
        )]);
    let sent: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.authorization.is_some())
        .collect();
    assert!(sent.is_empty(), "{sent:?}");
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
}

// ---------------------------------------------------------------------------------------------
// 9–10, 15–20: documents
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_manifest_is_refused() {
    assert_manifest_refused(
        "malformed",
        DOCKER_MANIFEST,
        br#"{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {"#,
        Fault::default(),
        &["invalid manifest"],
    );
}

#[test]
fn unknown_tag_is_manifest_unknown() {
    let sandbox = Sandbox::new("404");
    let (registry, _image) = serve("ok/there", &[small_layer("404")]);
    let reference = registry.reference("ok/there:nope");
    sandbox.pull(&reference).assert_fails(&[
        &format!("manifest for {reference} not found"),
        "manifest unknown",
    ]);
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
}

#[test]
fn pull_by_digest() {
    let sandbox = Sandbox::new("by-digest");
    let (registry, image) = serve("ok/digest", &[small_layer("by digest")]);
    let reference = registry.reference(&format!("ok/digest@{}", image.manifest_digest));
    sandbox.pull(&reference).assert_ok();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            sandbox
                .root()
                .join("images")
                .join(format!("{}.json", hex(&image.config_digest))),
        )
        .expect("image record"),
    )
    .unwrap();
    assert_eq!(
        record["repo_digests"],
        serde_json::json!([format!(
            "{}/ok/digest@{}",
            registry.host(),
            image.manifest_digest
        )])
    );
    assert_layer_present(&sandbox.root(), &image.layers[0]);
    assert!(
        registry
            .requests_to(&FaultRegistry::manifest_path(
                "ok/digest",
                &image.manifest_digest
            ))
            .iter()
            .any(|r| r.status == 200)
    );
    assert_store_intact(&sandbox.root());
}

#[test]
fn invalid_references_are_refused_before_any_network() {
    let sandbox = Sandbox::new("refs");
    let line = sandbox.pull("UPPER").assert_client_refuses();
    assert_eq!(
        line,
        "invalid reference format: repository name (library/UPPER) must be lowercase"
    );
    let line = sandbox.pull("a:-x").assert_client_refuses();
    assert!(line.starts_with("invalid reference format"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// 12: whiteouts and metadata of a good layer
// ---------------------------------------------------------------------------------------------

#[test]
fn good_layer_whiteouts_and_metadata() {
    const Y2001: u64 = 978_307_200;
    let sandbox = Sandbox::new("metadata");
    let mut suid = TarEntry::new("suid", tar::EntryType::Regular);
    suid.data = b"#!/bin/sh\n".to_vec();
    suid.mode = 0o4755;
    let mut owned = TarEntry::new("owned", tar::EntryType::Regular);
    owned.data = b"owned by 1000".to_vec();
    owned.uid = 1000;
    owned.gid = 1000;
    owned.mtime = Y2001;
    let tar = TarBuilder::new()
        .dir("dir")
        .file("dir/file", b"kept")
        .file("dir/.wh.gone", b"")
        .entry(suid)
        .fifo("fifo")
        .file("hl-a", b"linked")
        .hardlink("hl-b", "hl-a")
        .symlink("sym", "dir/file")
        .entry(owned)
        .pax(&[("SCHILY.xattr.trusted.berth-test", b"1")])
        .dir("xdir")
        .finish();
    let (registry, image) = serve("ok/meta", &[tar]);
    let reference = registry.reference("ok/meta:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);

    let diff = sandbox
        .root()
        .join("layers")
        .join(image.layers[0].diff_hex())
        .join("diff");
    let meta = |rel: &str| {
        std::fs::symlink_metadata(diff.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };

    assert_eq!(std::fs::read(diff.join("dir/file")).unwrap(), b"kept");
    let gone = meta("dir/gone");
    assert!(
        gone.file_type().is_char_device(),
        "dir/gone is not a whiteout"
    );
    assert_eq!(gone.rdev(), 0);
    assert!(!diff.join("dir/.wh.gone").exists());

    assert_eq!(meta("suid").permissions().mode() & 0o7777, 0o4755);
    assert!(meta("fifo").file_type().is_fifo());

    let (a, b) = (meta("hl-a"), meta("hl-b"));
    assert_eq!(
        (a.dev(), a.ino()),
        (b.dev(), b.ino()),
        "hardlink pair split"
    );
    assert_eq!(a.nlink(), 2);

    assert!(meta("sym").file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(diff.join("sym")).unwrap(),
        Path::new("dir/file")
    );

    let owned = meta("owned");
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
    assert_eq!(owned.mtime(), Y2001 as i64);

    // pax xattrs are applied (overlayfs' own are not: security_unpack's case 10).
    assert_eq!(
        lgetxattr(&diff.join("xdir"), "trusted.berth-test"),
        Some(b"1".to_vec())
    );
}

// ---------------------------------------------------------------------------------------------
// 15: slow and silent registries (issue 22): time limits, retry lines, a clear failure
// ---------------------------------------------------------------------------------------------

/// A pull limited to 2 s at a time must end long before this: it only tells a bounded wait from
/// an endless one, and says nothing about speed.
const STUCK_LIMIT: Duration = Duration::from_secs(60);

/// A byte a second.
fn trickle() -> Fault {
    Fault {
        slow: Some((1, Duration::from_secs(1))),
        ..Fault::default()
    }
}

#[track_caller]
fn assert_bounded(outcome: &Outcome) {
    assert!(
        outcome.took < STUCK_LIMIT,
        "berth {} took {:?}",
        outcome.args,
        outcome.took
    );
}

/// The `Retrying in N seconds` lines of `id` on stdout (`docker pull | cat` shows one a
/// second).
fn retry_lines<'a>(outcome: &'a Outcome, id: &str) -> Vec<&'a str> {
    outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{id}: Retrying in ")))
        .collect()
}

fn short_id(digest: &str) -> &str {
    &hex(digest)[..12]
}

#[test]
fn manifest_trickled_a_byte_a_second_times_out() {
    let sandbox = Sandbox::new("manifest-trickle");
    let (registry, image) = serve("slow/manifest", &[small_layer("trickled manifest")]);
    let path = FaultRegistry::manifest_path("slow/manifest", "latest");
    registry.set_fault(&path, trickle());
    let outcome = sandbox.pull_impatiently(&registry.reference("slow/manifest:latest"), &[]);
    outcome.assert_fails(&[
        &format!("Get \"http://{}{path}\"", registry.host()),
        "request timed out after 2s (BERTH_REGISTRY_REQUEST_TIMEOUT)",
    ]);
    assert_bounded(&outcome);
    assert!(
        registry.sent(&path) < image.manifest.len(),
        "the manifest was sent whole"
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn manifest_request_that_is_never_answered_times_out() {
    let sandbox = Sandbox::new("manifest-hang");
    let (registry, image) = serve("slow/silent", &[small_layer("never answered")]);
    let path = FaultRegistry::manifest_path("slow/silent", "latest");
    registry.set_fault(
        &path,
        Fault {
            hang: true,
            ..Fault::default()
        },
    );
    let outcome = sandbox.pull_impatiently(&registry.reference("slow/silent:latest"), &[]);
    outcome.assert_fails(&[
        &path,
        "request timed out after 2s (BERTH_REGISTRY_REQUEST_TIMEOUT)",
    ]);
    assert_bounded(&outcome);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

/// Failed attempts at the manifest are retried within the request's limit, and each wait shows
/// on the line of the tag being pulled.
#[test]
fn manifest_retries_are_shown() {
    let sandbox = Sandbox::new("manifest-retries");
    let (registry, image) = serve("slow/retries", &[small_layer("retried manifest")]);
    let path = FaultRegistry::manifest_path("slow/retries", "latest");
    registry.set_fault(
        &path,
        Fault {
            fail_status: Some(503),
            fail_times: 100,
            ..Fault::default()
        },
    );
    let reference = registry.reference("slow/retries:latest");
    let outcome = sandbox.pull_impatiently(&reference, &[("BERTH_REGISTRY_REQUEST_TIMEOUT", "30")]);
    outcome.assert_fails(&["injected failure"]);
    assert_bounded(&outcome);
    assert_eq!(registry.requests_to(&path).len(), 5, "five attempts");
    let lines = retry_lines(&outcome, "latest");
    assert!(
        lines.contains(&"latest: Retrying in 1 second") && lines.len() >= 4,
        "stdout: {}",
        outcome.stdout
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);

    // Once the registry recovers, the same pull goes through.
    registry.clear_fault(&path);
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn blob_trickled_a_byte_a_second_is_resumed_then_fails() {
    let sandbox = Sandbox::new("blob-trickle");
    let (registry, image) = serve("slow/blob", &[noisy_layer("trickled", 16 * 1024, 15)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("slow/blob", &layer.digest);
    registry.set_fault(&path, trickle());
    let outcome = sandbox.pull_impatiently(&registry.reference("slow/blob:latest"), &[]);
    let line = outcome.assert_fails(&[
        &layer.digest,
        "stalled: less than 1024 bytes in 2s (BERTH_REGISTRY_STALL_TIMEOUT) after ",
        &format!(" of {} bytes", layer.blob.len()),
    ]);
    assert_bounded(&outcome);
    // Every new attempt resumed where the last one stopped.
    let requests = registry.requests_to(&path);
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.range.as_deref().is_some_and(|r| r != "bytes=0-")),
        "{requests:?}"
    );
    let id = short_id(&layer.digest);
    assert!(
        retry_lines(&outcome, id).len() >= 4,
        "no retry lines for {id}: {}",
        outcome.stdout
    );
    eprintln!("{line}");
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn blob_request_that_is_never_answered_is_retried_then_fails() {
    let sandbox = Sandbox::new("blob-hang");
    let (registry, image) = serve(
        "slow/blobhang",
        &[
            small_layer("first"),
            noisy_layer("never sent", 8 * 1024, 16),
        ],
    );
    let silent = &image.layers[1];
    let path = FaultRegistry::blob_path("slow/blobhang", &silent.digest);
    registry.set_fault(
        &path,
        Fault {
            hang: true,
            ..Fault::default()
        },
    );
    let outcome = sandbox.pull_impatiently(&registry.reference("slow/blobhang:latest"), &[]);
    outcome.assert_fails(&[&path, "no answer within 2s (BERTH_REGISTRY_STALL_TIMEOUT)"]);
    assert_bounded(&outcome);
    assert_eq!(registry.requests_to(&path).len(), 5);
    let id = short_id(&silent.digest);
    assert!(
        retry_lines(&outcome, id).len() >= 4,
        "no retry lines for {id}: {}",
        outcome.stdout
    );
    // The other layer may have been committed before the failure; nothing half-written is.
    assert_clean_after_failure(&sandbox, &registry, &image, &[&image.layers[0]]);
}

#[test]
fn blob_that_goes_silent_midway_is_resumed_then_fails() {
    let sandbox = Sandbox::new("blob-silent");
    let (registry, image) = serve("slow/midway", &[noisy_layer("stops", 64 * 1024, 17)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("slow/midway", &layer.digest);
    // 512 bytes, then nothing for ten minutes: each of the five attempts brings 512 more,
    // less than STALL_BYTES (a connection that brings that much renews the attempts).
    registry.set_fault(
        &path,
        Fault {
            slow: Some((512, Duration::from_secs(600))),
            ..Fault::default()
        },
    );
    let outcome = sandbox.pull_impatiently(&registry.reference("slow/midway:latest"), &[]);
    outcome.assert_fails(&[
        &layer.digest,
        &format!(
            "stalled: no data for 2s (BERTH_REGISTRY_STALL_TIMEOUT) after 2560 of {} bytes",
            layer.blob.len()
        ),
    ]);
    assert_bounded(&outcome);
    let ranges: Vec<_> = registry
        .requests_to(&path)
        .into_iter()
        .map(|r| r.range)
        .collect();
    let expected: Vec<Option<String>> = [None, Some("bytes=512-"), Some("bytes=1024-")]
        .into_iter()
        .chain([Some("bytes=1536-"), Some("bytes=2048-")])
        .map(|r| r.map(str::to_string))
        .collect();
    assert_eq!(ranges, expected);
    assert!(retry_lines(&outcome, short_id(&layer.digest)).len() >= 4);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn blob_request_unanswered_once_is_retried_and_pulled() {
    let sandbox = Sandbox::new("blob-hang-once");
    let (registry, image) = serve("slow/once", &[noisy_layer("late", 8 * 1024, 18)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("slow/once", &layer.digest);
    registry.set_fault(
        &path,
        Fault {
            hang: true,
            hang_times: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("slow/once:latest");
    let outcome = sandbox.pull_impatiently(&reference, &[]);
    outcome.assert_ok();
    assert_bounded(&outcome);
    let id = short_id(&layer.digest);
    assert_eq!(
        retry_lines(&outcome, id),
        [format!("{id}: Retrying in 1 second")],
        "stdout: {}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains(&format!("{id}: Pull complete")),
        "{}",
        outcome.stdout
    );
    assert_eq!(registry.requests_to(&path).len(), 2);
    assert_pulled(&sandbox, &reference, &image);
}

/// On a terminal the wait shows on the layer's live line, which then goes on to `Pull complete`.
#[test]
fn retry_shows_on_the_live_line() {
    let sandbox = Sandbox::new("blob-hang-tty");
    let (registry, image) = serve("slow/tty", &[noisy_layer("late", 8 * 1024, 19)]);
    let layer = &image.layers[0];
    registry.set_fault(
        &FaultRegistry::blob_path("slow/tty", &layer.digest),
        Fault {
            hang: true,
            hang_times: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("slow/tty:latest");
    let mut cmd = sandbox.command(&["pull", &reference]);
    cmd.env("BERTH_REGISTRY_STALL_TIMEOUT", SHORT_LIMIT);
    let mut session = common::pty::PtySession::spawn(cmd, 24, 120);
    let id = short_id(&layer.digest);
    let t = Duration::from_secs(30);
    session.expect(&format!("{id}: Retrying in 1 second"), t);
    session.expect(&format!("{id}: Pull complete"), t);
    assert_eq!(session.wait(t), 0, "{}", session.transcript());
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn unreadable_time_limit_is_refused() {
    let sandbox = Sandbox::new("bad-limit");
    let (registry, _image) = serve("slow/setting", &[small_layer("never asked for")]);
    let outcome = sandbox.pull_impatiently(
        &registry.reference("slow/setting:latest"),
        &[("BERTH_REGISTRY_STALL_TIMEOUT", "soon")],
    );
    outcome.assert_fails(&[
        "invalid BERTH_REGISTRY_STALL_TIMEOUT \"soon\": expected a duration such as 30, 30s or 500ms",
    ]);
    assert!(registry.requests().is_empty(), "{:?}", registry.requests());
}
