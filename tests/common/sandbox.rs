//! The `berth pull` harness of the registry and unpack tests (pull_faults, security_registry,
//! security_unpack): a private store per test ([`Sandbox`]), one run's [`Outcome`] with its
//! checks (exit 125 and one line on stderr), and the store checks that follow a failed pull
//! (nothing of it visible, nothing half-written, nothing outside touched).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::fault_registry::{
    Fault, FaultRegistry, Image, Layer, TarBuilder, TarEntry, build_image, noise, sha256,
};

/// The registry client's time limits (seconds) under [`Sandbox::pull_impatiently`].
pub const SHORT_LIMIT: &str = "2";

/// Longest a single berth run may take before the test gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A private directory (store root, outside dirs, docker config), removed on drop.
pub struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
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

    pub fn root(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// A fresh, empty directory beside the store, standing for "the rest of the host".
    pub fn outside(&self) -> PathBuf {
        let path = self.dir.join("outside");
        std::fs::create_dir_all(&path).expect("create outside dir");
        path
    }

    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(Path::new(env!("CARGO_BIN_EXE_berth")), args)
    }

    /// [`Sandbox::command`] running the berth binary at `program` (a copy, say).
    pub fn command_with(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
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

    pub fn run(&self, args: &[&str]) -> Outcome {
        wait_outcome(self.command(args).spawn().expect("spawn berth"), args)
    }

    pub fn pull(&self, reference: &str) -> Outcome {
        self.run(&["pull", reference])
    }

    /// `pull` with the registry client's time limits cut to `SHORT_LIMIT` (and `env` besides).
    pub fn pull_impatiently(&self, reference: &str, env: &[(&str, &str)]) -> Outcome {
        let args = ["pull", reference];
        let mut cmd = self.command(&args);
        cmd.env("BERTH_REGISTRY_REQUEST_TIMEOUT", SHORT_LIMIT)
            .env("BERTH_REGISTRY_STALL_TIMEOUT", SHORT_LIMIT)
            .envs(env.iter().copied());
        wait_outcome(cmd.spawn().expect("spawn berth"), &args)
    }

    pub fn spawn_pull(&self, reference: &str) -> Child {
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
pub struct Outcome {
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// How long the run took.
    pub took: Duration,
}

pub fn wait_outcome(mut child: Child, args: &[&str]) -> Outcome {
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
    pub fn assert_ok(&self) -> &Outcome {
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

    /// A refused pull as Docker's: exit 1 with exactly one line on stderr, "Error response
    /// from daemon: …", containing every one of `needles`. Returns the line.
    #[track_caller]
    pub fn assert_fails(&self, needles: &[&str]) -> String {
        let line = self.assert_one_line_exit_1();
        assert!(
            line.starts_with("Error response from daemon: "),
            "berth {}: not the daemon's refusal: {line:?}",
            self.args
        );
        for needle in needles {
            assert!(
                line.contains(needle),
                "berth {}: stderr {line:?} lacks {needle:?}",
                self.args
            );
        }
        line
    }

    /// What Docker's client refuses itself (a bad reference): exit 1, the one line alone.
    #[track_caller]
    pub fn assert_client_refuses(&self) -> String {
        let line = self.assert_one_line_exit_1();
        assert!(
            !line.starts_with("Error response from daemon: "),
            "berth {}: the client's own refusal says it is the daemon's: {line:?}",
            self.args
        );
        line
    }

    #[track_caller]
    fn assert_one_line_exit_1(&self) -> String {
        assert_eq!(
            self.code,
            Some(1),
            "berth {}: expected exit 1\nstdout: {}\nstderr: {}",
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
        eprintln!("berth {}: {}", self.args, lines[0]);
        lines[0].to_string()
    }
}

pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("sha256 digest")
}

pub fn names_in(dir: &Path) -> BTreeSet<String> {
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

pub fn repositories(root: &Path) -> serde_json::Value {
    match std::fs::read(root.join("repositories.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("repositories.json parses"),
        Err(_) => serde_json::json!({"tags": {}}),
    }
}

pub fn tags(root: &Path) -> BTreeSet<String> {
    repositories(root)["tags"]
        .as_object()
        .map(|tags| tags.keys().cloned().collect())
        .unwrap_or_default()
}

/// A small good image on a registry of its own, pulled to make berth take the store lock (and
/// so sweep abandoned temp entries) in a store a test has just failed to pull into.
pub fn good_registry() -> &'static FaultRegistry {
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

pub fn pull_good(sandbox: &Sandbox) {
    sandbox
        .pull(&good_registry().reference("good/img:latest"))
        .assert_ok();
}

/// Checks the store is intact: every layer directory is complete, every blob hashes to its
/// name, image records and tags point at things that exist, and nothing is left in `tmp/` or as a
/// temp blob. Call it after a successful berth run (which sweeps abandoned temp entries).
#[track_caller]
pub fn assert_store_intact(root: &Path) {
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
pub fn assert_clean_after_failure(
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

pub fn small_layer(text: &str) -> Vec<u8> {
    TarBuilder::new()
        .dir("data")
        .file("data/text", text.as_bytes())
        .finish()
}

/// A layer of `len` incompressible bytes, so that its gzip blob is about as large.
pub fn noisy_layer(name: &str, len: usize, seed: u64) -> Vec<u8> {
    TarBuilder::new().file(name, &noise(len, seed)).finish()
}

pub fn serve(repo: &str, tars: &[Vec<u8>]) -> (FaultRegistry, Image) {
    let registry = FaultRegistry::start();
    let image = build_image(tars);
    registry.push_image(repo, "latest", &image);
    (registry, image)
}

#[track_caller]
pub fn assert_layer_present(root: &Path, layer: &Layer) {
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
pub fn assert_pulled(sandbox: &Sandbox, reference: &str, image: &Image) {
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

/// Pulls an image whose one layer is `tar` (after a harmless first entry) and expects berth to
/// refuse `entry`; the store must hold nothing of it, and `outside` must stay as it was.
#[track_caller]
pub fn assert_tar_refused(sandbox: &Sandbox, tar: Vec<u8>, entry: &str, outside: &Path) {
    assert_layer_refused(
        sandbox,
        tar,
        &[&format!("refusing unsafe tar entry {entry:?}")],
        outside,
    );
}

/// Like [`assert_tar_refused`], for a refusal worded with `needles`; returns the error line.
#[track_caller]
pub fn assert_layer_refused(
    sandbox: &Sandbox,
    tar: Vec<u8>,
    needles: &[&str],
    outside: &Path,
) -> String {
    let before = names_in(outside);
    let (registry, image) = serve("evil/layer", &[tar]);
    let line = sandbox
        .pull(&registry.reference("evil/layer:latest"))
        .assert_fails(needles);
    assert_eq!(names_in(outside), before, "something was written outside");
    assert_clean_after_failure(sandbox, &registry, &image, &[]);
    line
}

/// Pulls an image of `tars` from a registry of its own; returns the registry (keep it alive),
/// the image and its reference.
#[track_caller]
pub fn pull_layers(
    sandbox: &Sandbox,
    repo: &str,
    tars: &[Vec<u8>],
) -> (FaultRegistry, Image, String) {
    let (registry, image) = serve(repo, tars);
    let reference = registry.reference(&format!("{repo}:latest"));
    sandbox.pull(&reference).assert_ok();
    assert_pulled(sandbox, &reference, &image);
    (registry, image, reference)
}

/// The unpacked directory of `image`'s layer `n` in the store.
pub fn layer_diff(sandbox: &Sandbox, image: &Image, n: usize) -> PathBuf {
    sandbox
        .root()
        .join("layers")
        .join(image.layers[n].diff_hex())
        .join("diff")
}

/// The host's static busybox (Debian's busybox-static, as the runtime tests use) as
/// /bin/busybox with the applet links a test runs, and the usual top directories: enough of a
/// root file system for `berth run`. More entries can follow before `finish`.
pub fn busybox_rootfs() -> TarBuilder {
    let mut busybox = TarEntry::new("bin/busybox", tar::EntryType::Regular);
    busybox.data = std::fs::read("/bin/busybox").expect("read /bin/busybox (busybox-static)");
    busybox.mode = 0o755;
    let mut tar = TarBuilder::new();
    for dir in ["bin", "dev", "etc", "proc", "sys"] {
        tar = tar.dir(dir);
    }
    let mut tmp = TarEntry::new("tmp", tar::EntryType::Directory);
    tmp.mode = 0o1777;
    tar = tar.entry(tmp);
    tar = tar.entry(busybox);
    for applet in [
        "sh", "cat", "echo", "head", "ls", "id", "pwd", "sleep", "stat", "grep", "wc", "touch",
        "mknod", "readlink", "true", "dd",
    ] {
        tar = tar.symlink(format!("bin/{applet}"), "busybox");
    }
    tar
}

/// `sha256:<hex>` of a file's contents.
pub fn sha256_file(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// `../` enough times to climb from anywhere in the store to `/`, then `path` (absolute) below.
pub fn climbing_to(path: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(16),
        path.to_str().unwrap().trim_start_matches('/')
    )
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

pub fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
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

/// Serves `bytes` as the manifest of `repo:latest` and expects the pull to fail with `needles`.
#[track_caller]
pub fn assert_manifest_refused(
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
