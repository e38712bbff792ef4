//! `berth pull` against a misbehaving registry (tests/common/fault_registry.rs): every bad input
//! or fault must end in exit code 125 with one clear line on stderr and an intact store, and
//! recoverable faults must be recovered from. Layer tars that try to escape the layer directory
//! are refused; whiteouts and file metadata of a good layer are unpacked faithfully.
//!
//! Run as root: `cargo test --test pull_faults`.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::fault_registry::{
    DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, Fault, FaultRegistry, Image, Layer, OCI_INDEX,
    TarBuilder, TarEntry, build_image, build_index, flip_byte, image_from_layers, noise, sha256,
};

/// Longest a single berth run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A private directory (store root, outside dirs, docker config), removed on drop.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-faults-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("docker-config")).expect("create sandbox");
        Sandbox { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// A fresh, empty directory beside the store, standing for "the rest of the host".
    fn outside(&self) -> PathBuf {
        let path = self.dir.join("outside");
        std::fs::create_dir_all(&path).expect("create outside dir");
        path
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--root")
            .arg(self.root())
            // A config file that does not exist: all defaults, whatever /etc/berth holds.
            .arg("--config")
            .arg(self.dir.join("no-such-berth-config.json"))
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Outcome {
        wait_outcome(self.command(args).spawn().expect("spawn berth"), args)
    }

    fn pull(&self, reference: &str) -> Outcome {
        self.run(&["pull", reference])
    }

    /// `pull` with the registry client's time limits cut to `SHORT_LIMIT` (and `env` besides).
    fn pull_impatiently(&self, reference: &str, env: &[(&str, &str)]) -> Outcome {
        let args = ["pull", reference];
        let mut cmd = self.command(&args);
        cmd.env("BERTH_REGISTRY_REQUEST_TIMEOUT", SHORT_LIMIT)
            .env("BERTH_REGISTRY_STALL_TIMEOUT", SHORT_LIMIT)
            .envs(env.iter().copied());
        wait_outcome(cmd.spawn().expect("spawn berth"), &args)
    }

    fn spawn_pull(&self, reference: &str) -> Child {
        self.command(&["pull", reference])
            .spawn()
            .expect("spawn berth")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct Outcome {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// How long the run took.
    took: Duration,
}

fn wait_outcome(mut child: Child, args: &[&str]) -> Outcome {
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let started = Instant::now();
    let deadline = started + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait berth") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        args: format!("{args:?}"),
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        took: started.elapsed(),
    }
}

impl Outcome {
    #[track_caller]
    fn assert_ok(&self) -> &Outcome {
        assert_eq!(
            self.code,
            Some(0),
            "berth {} failed\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Exit 125 with exactly one line on stderr containing every one of `needles`. Returns the
    /// line.
    #[track_caller]
    fn assert_fails(&self, needles: &[&str]) -> String {
        assert_eq!(
            self.code,
            Some(125),
            "berth {}: expected exit 125\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "berth {}: expected one line on stderr, got {:?}",
            self.args,
            self.stderr
        );
        for needle in needles {
            assert!(
                lines[0].contains(needle),
                "berth {}: stderr {:?} lacks {needle:?}",
                self.args,
                lines[0]
            );
        }
        eprintln!("berth {}: {}", self.args, lines[0]);
        lines[0].to_string()
    }
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("sha256 digest")
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => panic!("read {}: {e}", dir.display()),
    }
}

fn repositories(root: &Path) -> serde_json::Value {
    match std::fs::read(root.join("repositories.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("repositories.json parses"),
        Err(_) => serde_json::json!({"tags": {}}),
    }
}

fn tags(root: &Path) -> BTreeSet<String> {
    repositories(root)["tags"]
        .as_object()
        .map(|tags| tags.keys().cloned().collect())
        .unwrap_or_default()
}

/// A small good image on a registry of its own, pulled to make berth take the store lock (and
/// so sweep abandoned temp entries) in a store a test has just failed to pull into.
fn good_registry() -> &'static FaultRegistry {
    static GOOD: OnceLock<FaultRegistry> = OnceLock::new();
    GOOD.get_or_init(|| {
        let registry = FaultRegistry::start();
        let tar = TarBuilder::new()
            .file("good/marker", b"the good image of pull_faults")
            .finish();
        registry.push_image("good/img", "latest", &build_image(&[tar]));
        registry
    })
}

fn pull_good(sandbox: &Sandbox) {
    sandbox
        .pull(&good_registry().reference("good/img:latest"))
        .assert_ok();
}

/// Checks the store is intact: every layer directory is complete, every blob hashes to its
/// name, image records and tags point at things that exist, and nothing is left in `tmp/` or as a
/// temp blob. Call it after a successful berth run (which sweeps abandoned temp entries).
#[track_caller]
fn assert_store_intact(root: &Path) {
    for name in names_in(&root.join("layers")) {
        let dir = root.join("layers").join(&name);
        assert!(
            dir.join("layer.json").is_file() && dir.join("diff").is_dir(),
            "incomplete layer directory {}",
            dir.display()
        );
        assert_eq!(name.len(), 64, "odd name in layers/: {name}");
    }
    for name in names_in(&root.join("blobs/sha256")) {
        assert!(
            !name.starts_with(".tmp-"),
            "temp blob {name} left in blobs/sha256"
        );
        let bytes = std::fs::read(root.join("blobs/sha256").join(&name)).expect("read blob");
        assert_eq!(
            sha256(&bytes),
            format!("sha256:{name}"),
            "blob {name} does not hash to its name"
        );
    }
    let left: Vec<String> = names_in(&root.join("tmp")).into_iter().collect();
    assert!(left.is_empty(), "tmp/ still holds {left:?}");
    let images = names_in(&root.join("images"));
    for name in &images {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("images").join(name)).unwrap())
                .expect("image record parses");
        let id = record["id"].as_str().expect("image id");
        assert!(
            root.join("blobs/sha256").join(hex(id)).is_file(),
            "image {id} lacks its config blob"
        );
        for layer in record["layers"].as_array().expect("layers") {
            let diff_id = layer["diff_id"].as_str().expect("diff_id");
            assert!(
                root.join("layers")
                    .join(hex(diff_id))
                    .join("layer.json")
                    .is_file(),
                "image {id} lacks layer {diff_id}"
            );
        }
    }
    for (tag, id) in repositories(root)["tags"].as_object().into_iter().flatten() {
        let id = id.as_str().expect("tagged id");
        assert!(
            images.contains(&format!("{}.json", hex(id))),
            "tag {tag} points at missing image {id}"
        );
    }
}

/// After a failed pull of `image` from `registry`: sweep with a good pull, then check the store
/// is intact and holds nothing of the failed pull except layers in `kept` (legitimately
/// committed before the failure).
#[track_caller]
fn assert_clean_after_failure(
    sandbox: &Sandbox,
    registry: &FaultRegistry,
    image: &Image,
    kept: &[&Layer],
) {
    pull_good(sandbox);
    let root = sandbox.root();
    assert_store_intact(&root);
    let prefix = format!("{}/", registry.host());
    let tags = tags(&root);
    assert!(
        tags.iter().all(|t| !t.starts_with(&prefix)),
        "a tag of the failed pull exists: {tags:?}"
    );
    assert!(
        !root
            .join("images")
            .join(format!("{}.json", hex(&image.config_digest)))
            .exists(),
        "an image record of the failed pull exists"
    );
    for layer in &image.layers {
        if kept.iter().any(|k| k.diff_id == layer.diff_id) {
            continue;
        }
        assert!(
            !root.join("layers").join(layer.diff_hex()).exists(),
            "layer {} of the failed pull exists",
            layer.diff_id
        );
        assert!(
            !root.join("blobs/sha256").join(hex(&layer.digest)).exists(),
            "blob {} of the failed pull exists",
            layer.digest
        );
    }
}

fn small_layer(text: &str) -> Vec<u8> {
    TarBuilder::new()
        .dir("data")
        .file("data/text", text.as_bytes())
        .finish()
}

/// A layer of `len` incompressible bytes, so that its gzip blob is about as large.
fn noisy_layer(name: &str, len: usize, seed: u64) -> Vec<u8> {
    TarBuilder::new().file(name, &noise(len, seed)).finish()
}

fn serve(repo: &str, tars: &[Vec<u8>]) -> (FaultRegistry, Image) {
    let registry = FaultRegistry::start();
    let image = build_image(tars);
    registry.push_image(repo, "latest", &image);
    (registry, image)
}

#[track_caller]
fn assert_layer_present(root: &Path, layer: &Layer) {
    assert!(
        root.join("layers")
            .join(layer.diff_hex())
            .join("layer.json")
            .is_file(),
        "layer {} missing",
        layer.diff_id
    );
    assert!(
        root.join("blobs/sha256").join(hex(&layer.digest)).is_file(),
        "blob {} missing",
        layer.digest
    );
}

/// A pulled image: its tag, record, config and layers are all there.
#[track_caller]
fn assert_pulled(sandbox: &Sandbox, reference: &str, image: &Image) {
    let root = sandbox.root();
    assert_eq!(
        repositories(&root)["tags"][reference].as_str(),
        Some(image.config_digest.as_str()),
        "{reference} not tagged"
    );
    for layer in &image.layers {
        assert_layer_present(&root, layer);
    }
    assert_store_intact(&root);
}

// ---------------------------------------------------------------------------------------------
// 1–2: digest mismatches
// ---------------------------------------------------------------------------------------------

#[test]
fn layer_digest_mismatch_is_refused() {
    let sandbox = Sandbox::new("layer-digest");
    let (registry, image) = serve(
        "bad/layer",
        &[small_layer("first"), noisy_layer("second", 4096, 1)],
    );
    let bad = &image.layers[1];
    // Byte 4 is the gzip header's MTIME: the stream still decodes, only the digest is wrong.
    registry.set_fault(
        &FaultRegistry::blob_path("bad/layer", &bad.digest),
        Fault {
            replace_body: Some(flip_byte(&bad.blob, 4)),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/layer:latest"))
        .assert_fails(&["digest mismatch", &bad.digest]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[&image.layers[0]]);
}

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
fn config_digest_mismatch_is_refused() {
    let sandbox = Sandbox::new("config-digest");
    let (registry, image) = serve("bad/config", &[small_layer("config mismatch")]);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/config", &image.config_digest),
        Fault {
            replace_body: Some(image.config.to_ascii_uppercase()),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/config:latest"))
        .assert_fails(&["digest mismatch", "image config", &image.config_digest]);
    // The config is checked before any layer is fetched.
    let layer_path = FaultRegistry::blob_path("bad/config", &image.layers[0].digest);
    assert!(registry.requests_to(&layer_path).is_empty());
    assert!(
        !sandbox
            .root()
            .join("blobs/sha256")
            .join(hex(&image.config_digest))
            .exists()
    );
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
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

#[test]
fn blob_longer_than_its_descriptor_is_refused() {
    let sandbox = Sandbox::new("longer");
    let (registry, image) = serve("bad/longer", &[small_layer("longer")]);
    let layer = &image.layers[0];
    let mut served = layer.blob.clone();
    served.extend_from_slice(&[0u8; 100]);
    registry.set_fault(
        &FaultRegistry::blob_path("bad/longer", &layer.digest),
        Fault {
            replace_body: Some(served),
            ..Fault::default()
        },
    );
    sandbox
        .pull(&registry.reference("bad/longer:latest"))
        .assert_fails(&[&format!(
            "size mismatch for {}: expected {} bytes, got",
            layer.digest,
            layer.blob.len()
        )]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn blob_shorter_than_its_descriptor_is_refused() {
    let sandbox = Sandbox::new("shorter");
    let (registry, image) = serve("bad/shorter", &[noisy_layer("blob", 8 * 1024, 8)]);
    let layer = &image.layers[0];
    let path = FaultRegistry::blob_path("bad/shorter", &layer.digest);
    let short = layer.blob.len() - 100;
    // A complete, well-framed response that is simply 100 bytes short.
    registry.set_fault(
        &path,
        Fault {
            replace_body: Some(layer.blob[..short].to_vec()),
            ..Fault::default()
        },
    );
    // berth takes the early end for a dropped connection and asks for the rest, which the
    // registry cannot serve (416): a clean failure, if one whose message names no blob.
    sandbox
        .pull(&registry.reference("bad/shorter:latest"))
        .assert_fails(&["range not satisfiable"]);
    let requests = registry.requests_to(&path);
    assert_eq!(requests[0].status, 200);
    assert!(requests.len() > 1, "no resume attempted: {requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.status == 416 && r.range == Some(format!("bytes={short}-"))),
        "{requests:?}"
    );
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

#[test]
fn connection_dropped_once_resumes_with_range() {
    let sandbox = Sandbox::new("resume");
    let (registry, image) = serve("ok/resume", &[noisy_layer("blob", 32 * 1024, 4)]);
    let path = FaultRegistry::blob_path("ok/resume", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            truncate_at: Some(7000),
            truncate_times: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/resume:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=7000-"));
    assert_eq!(requests[1].status, 206);
    assert_pulled(&sandbox, &reference, &image);
}

#[test]
fn server_ignoring_range_after_a_drop_is_skipped_through() {
    let sandbox = Sandbox::new("norange");
    let (registry, image) = serve("ok/norange", &[noisy_layer("blob", 32 * 1024, 5)]);
    let path = FaultRegistry::blob_path("ok/norange", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            truncate_at: Some(9000),
            truncate_times: Some(1),
            ignore_range: true,
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/norange:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].range.as_deref(), Some("bytes=9000-"));
    assert_eq!(requests[1].status, 200, "the server was to ignore Range");
    assert_pulled(&sandbox, &reference, &image);
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
fn too_many_requests_honours_retry_after() {
    let sandbox = Sandbox::new("429");
    let (registry, image) = serve("ok/429", &[small_layer("429")]);
    let path = FaultRegistry::blob_path("ok/429", &image.layers[0].digest);
    registry.set_fault(
        &path,
        Fault {
            fail_status: Some(429),
            fail_times: 1,
            retry_after: Some(1),
            ..Fault::default()
        },
    );
    let reference = registry.reference("ok/429:latest");
    sandbox.pull(&reference).assert_ok();
    let requests = registry.requests_to(&path);
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After: 1 not honoured (retried after {waited:?})"
    );
    assert_pulled(&sandbox, &reference, &image);
}

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
fn redirected_blobs_get_no_credentials() {
    let sandbox = Sandbox::new("redirect");
    let registry = FaultRegistry::start_with_basic_auth("user", "pass");
    let cdn = FaultRegistry::start();
    let image = build_image(&[small_layer("behind a redirect")]);
    registry.push_image("priv/img", "latest", &image);
    cdn.push_image("priv/img", "latest", &image);
    let to_cdn = Fault {
        redirect: Some(format!("http://localhost:{}", cdn.port())),
        ..Fault::default()
    };
    let layer_path = FaultRegistry::blob_path("priv/img", &image.layers[0].digest);
    let config_path = FaultRegistry::blob_path("priv/img", &image.config_digest);
    registry.set_fault(&layer_path, to_cdn.clone());
    registry.set_fault(&config_path, to_cdn);
    std::fs::write(
        sandbox.docker_config().join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
    )
    .unwrap();

    let reference = registry.reference("priv/img:latest");
    sandbox.pull(&reference).assert_ok();
    assert_pulled(&sandbox, &reference, &image);

    let expected = Some("Basic dXNlcjpwYXNz".to_string());
    for path in [&layer_path, &config_path] {
        let asked = registry.requests_to(path);
        assert!(!asked.is_empty(), "{path} never asked of the registry");
        assert!(
            asked
                .iter()
                .all(|r| r.status == 307 && r.authorization == expected),
            "{asked:?}"
        );
        let fetched = cdn.requests_to(path);
        assert!(
            !fetched.is_empty(),
            "{path} never fetched from the redirect target"
        );
        assert!(
            fetched
                .iter()
                .all(|r| r.authorization.is_none() && r.status == 200),
            "credentials leaked to the redirect target: {fetched:?}"
        );
    }
    let manifest = registry.requests_to(&FaultRegistry::manifest_path("priv/img", "latest"));
    assert!(
        manifest
            .iter()
            .any(|r| r.status == 200 && r.authorization == expected),
        "{manifest:?}"
    );
}

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

/// Serves `bytes` as the manifest of `repo:latest` and expects the pull to fail with `needles`.
#[track_caller]
fn assert_manifest_refused(
    name: &str,
    media_type: &str,
    bytes: &[u8],
    fault: Fault,
    needles: &[&str],
) -> (Sandbox, FaultRegistry) {
    let sandbox = Sandbox::new(name);
    let registry = FaultRegistry::start();
    let repo = format!("bad/{name}");
    registry.put_manifest(&repo, "latest", media_type, bytes);
    registry.set_fault(&FaultRegistry::manifest_path(&repo, "latest"), fault);
    sandbox
        .pull(&registry.reference(&format!("{repo}:latest")))
        .assert_fails(needles);
    let blobs: Vec<_> = registry
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/"))
        .collect();
    assert!(
        blobs.is_empty(),
        "blobs fetched for a refused manifest: {blobs:?}"
    );
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
    assert_eq!(
        tags(&sandbox.root()),
        BTreeSet::from([good_registry().reference("good/img:latest")])
    );
    (sandbox, registry)
}

fn huge_manifest() -> Vec<u8> {
    let padding = "x".repeat(5 << 20);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "annotations": {"padding": padding},
    }))
    .unwrap()
}

#[test]
fn manifest_over_the_size_limit_is_refused() {
    assert_manifest_refused(
        "huge",
        DOCKER_MANIFEST,
        &huge_manifest(),
        Fault::default(),
        &["manifest", "exceeds the 4194304-byte limit"],
    );
}

#[test]
fn manifest_over_the_size_limit_without_content_length_is_refused() {
    assert_manifest_refused(
        "huge-chunked",
        DOCKER_MANIFEST,
        &huge_manifest(),
        Fault {
            no_content_length: true,
            ..Fault::default()
        },
        &["manifest", "exceeds the 4194304-byte limit"],
    );
}

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
fn schema1_manifest_is_unsupported() {
    let body = serde_json::json!({
        "schemaVersion": 1,
        "name": "bad/schema1",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [],
        "history": [],
    })
    .to_string();
    assert_manifest_refused(
        "schema1",
        DOCKER_SCHEMA1_SIGNED,
        body.as_bytes(),
        Fault::default(),
        &["unsupported manifest format", "schema 1"],
    );
}

#[test]
fn manifest_that_is_also_an_index_is_refused() {
    let image = build_image(&[small_layer("ambiguous")]);
    let mut doc: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    doc["manifests"] = serde_json::json!([{
        "mediaType": DOCKER_MANIFEST,
        "digest": image.manifest_digest,
        "size": image.manifest.len(),
        "platform": {"os": "linux", "architecture": "amd64"},
    }]);
    assert_manifest_refused(
        "ambiguous",
        DOCKER_MANIFEST,
        &serde_json::to_vec(&doc).unwrap(),
        Fault::default(),
        &["invalid manifest: the document is both a manifest and an index"],
    );
}

#[test]
fn unknown_layer_media_type_is_refused() {
    let mut layer = Layer::gzip(&small_layer("odd media type"));
    layer.media_type = "application/vnd.example.unknown.layer".into();
    let image = image_from_layers(vec![layer], "amd64");
    assert_manifest_refused(
        "mediatype",
        DOCKER_MANIFEST,
        &image.manifest,
        Fault::default(),
        &["unsupported layer media type application/vnd.example.unknown.layer"],
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
fn pull_by_digest_refuses_a_different_manifest() {
    let sandbox = Sandbox::new("wrong-digest");
    let (registry, image) = serve("bad/digest", &[small_layer("wrong digest")]);
    let claimed = sha256(b"some other manifest");
    registry.put_manifest_at("bad/digest", &claimed, DOCKER_MANIFEST, &image.manifest);
    sandbox
        .pull(&registry.reference(&format!("bad/digest@{claimed}")))
        .assert_fails(&["digest mismatch", &claimed, &image.manifest_digest]);
    assert_clean_after_failure(&sandbox, &registry, &image, &[]);
}

#[test]
fn index_without_the_host_platform() {
    let sandbox = Sandbox::new("index");
    let registry = FaultRegistry::start();
    let arm = image_from_layers(vec![Layer::gzip(&small_layer("arm64 only"))], "arm64");
    registry.put_blob(&arm.config);
    registry.put_blob(&arm.layers[0].blob);
    registry.put_manifest(
        "multi/arch",
        &arm.manifest_digest,
        DOCKER_MANIFEST,
        &arm.manifest,
    );
    let index = build_index(&[(&arm, "linux", "arm64")]);
    registry.put_manifest("multi/arch", "latest", OCI_INDEX, &index);
    let reference = registry.reference("multi/arch:latest");

    let line = sandbox.pull(&reference).assert_fails(&[]);
    assert_eq!(
        line,
        "no matching manifest for linux/amd64 in the manifest list entries"
    );
    pull_good(&sandbox);
    assert_store_intact(&sandbox.root());
    assert!(
        !sandbox
            .root()
            .join("layers")
            .join(arm.layers[0].diff_hex())
            .exists()
    );

    sandbox
        .run(&["pull", "--platform", "linux/arm64", &reference])
        .assert_ok();
    assert_pulled(&sandbox, &reference, &arm);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            sandbox
                .root()
                .join("images")
                .join(format!("{}.json", hex(&arm.config_digest))),
        )
        .unwrap(),
    )
    .unwrap();
    // The repo digest names the index the tag resolved to.
    assert_eq!(
        record["repo_digests"],
        serde_json::json!([format!("{}/multi/arch@{}", registry.host(), sha256(&index))])
    );
}

#[test]
fn invalid_references_are_refused_before_any_network() {
    let sandbox = Sandbox::new("refs");
    let line = sandbox.pull("UPPER").assert_fails(&[]);
    assert_eq!(
        line,
        "invalid reference format: repository name (library/UPPER) must be lowercase"
    );
    let line = sandbox.pull("a:-x").assert_fails(&[]);
    assert!(line.starts_with("invalid reference format"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// 11: malicious layer tars
// ---------------------------------------------------------------------------------------------

/// Pulls an image whose one layer is `tar` (after a harmless first entry) and expects berth to
/// refuse `entry`; the store must hold nothing of it, and `outside` must stay as it was.
#[track_caller]
fn assert_tar_refused(sandbox: &Sandbox, tar: Vec<u8>, entry: &str, outside: &Path) {
    let before = names_in(outside);
    let (registry, image) = serve("evil/layer", &[tar]);
    sandbox
        .pull(&registry.reference("evil/layer:latest"))
        .assert_fails(&[&format!("refusing unsafe tar entry {entry:?}")]);
    assert_eq!(names_in(outside), before, "something was written outside");
    assert_clean_after_failure(sandbox, &registry, &image, &[]);
}

/// `../` enough times to climb from anywhere in the store to `/`, then `path` (absolute) below.
fn climbing_to(path: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(16),
        path.to_str().unwrap().trim_start_matches('/')
    )
}

#[test]
fn tar_entry_with_dotdot_is_refused() {
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
fn tar_entry_climbing_to_the_host_is_refused() {
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
fn tar_entry_with_absolute_path_is_refused() {
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
fn tar_entry_with_inner_dotdot_is_refused() {
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
fn tar_writing_through_a_symlink_is_refused() {
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
fn tar_whiteout_through_a_symlink_is_refused() {
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
fn tar_hardlinks_leaving_the_layer_are_refused() {
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
fn tar_bare_whiteout_is_refused() {
    let sandbox = Sandbox::new("bare-wh");
    let outside = sandbox.outside();
    for name in [".wh.", "dir/.wh."] {
        let tar = TarBuilder::new()
            .file("fine", b"ok")
            .dir("dir")
            .file(name, b"")
            .finish();
        assert_tar_refused(&sandbox, tar, name, &outside);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 12: whiteouts and metadata of a good layer
// ---------------------------------------------------------------------------------------------

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let cpath = CString::new(path.as_os_str().as_bytes()).unwrap();
    let cname = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::ENODATA),
            "lgetxattr {} {name}: {err}",
            path.display()
        );
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

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
        .dir("opq")
        .file("opq/new", b"new in this layer")
        .file("opq/.wh..wh..opq", b"")
        .entry(suid)
        .fifo("fifo")
        .file("hl-a", b"linked")
        .hardlink("hl-b", "hl-a")
        .symlink("sym", "dir/file")
        .entry(owned)
        .pax(&[
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.berth-test", b"1"),
        ])
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

    assert_eq!(
        lgetxattr(&diff.join("opq"), "trusted.overlay.opaque"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        std::fs::read(diff.join("opq/new")).unwrap(),
        b"new in this layer"
    );
    assert_eq!(
        names_in(&diff.join("opq")),
        BTreeSet::from(["new".to_string()])
    );

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

    // pax xattrs are applied, except overlayfs' own, which a layer must not forge.
    assert_eq!(
        lgetxattr(&diff.join("xdir"), "trusted.berth-test"),
        Some(b"1".to_vec())
    );
    assert_eq!(
        lgetxattr(&diff.join("xdir"), "trusted.overlay.opaque"),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// 13–14: crashes and concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_during_download_then_pull_again() {
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
fn concurrent_pulls_share_a_layer() {
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
    let first = sandbox.spawn_pull(&ref_a);
    let second = sandbox.spawn_pull(&ref_b);
    wait_outcome(first, &["pull", &ref_a]).assert_ok();
    wait_outcome(second, &["pull", &ref_b]).assert_ok();

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

// ---------------------------------------------------------------------------------------------
// 15: slow and silent registries (issue 22): time limits, retry lines, a clear failure
// ---------------------------------------------------------------------------------------------

/// The registry client's time limits in these tests (BERTH_REGISTRY_*_TIMEOUT).
const SHORT_LIMIT: &str = "2";

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
