//! Shared test helpers: a private store root per test, running the real `berth` binary, and
//! bringing up the registry fixtures (tests/fixtures/setup.sh) once per test process.
//!
//! Every test file compiles this module into its own test binary and uses only part of it, so
//! what one binary leaves unused would warn as dead code there: hence the `allow` below.
#![allow(dead_code)]

pub mod bundle;
pub mod containerd;
pub mod fault_registry;
pub mod image_tree;
pub mod lab;
pub mod net;
pub mod output;
pub mod procs;
pub mod pty;
pub mod run_cli;
pub mod sandbox;
pub mod store;
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// Anonymous, htpasswd and token-auth fixture registries (see tests/fixtures/README.md).
pub const ANON: &str = "127.0.0.1:5000";
pub const BASIC: &str = "127.0.0.1:5001";
pub const TOKEN: &str = "127.0.0.1:5002";
pub const USER: &str = "berth";
pub const PASSWORD: &str = "berthpass";

/// Fixture images on the anonymous registry.
pub const BUSYBOX: &str = "127.0.0.1:5000/busybox:latest";
pub const DEBIAN: &str = "127.0.0.1:5000/debian:bookworm";

/// Starts the fixture registries and builds the fixture images (cached) once.
pub fn fixtures() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/setup.sh");
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .expect("run tests/fixtures/setup.sh");
        assert!(status.success(), "tests/fixtures/setup.sh failed");
    });
}

/// A store root of its own, removed when dropped.
pub struct TestRoot {
    /// The store root passed as `--root`.
    pub path: PathBuf,
    /// Holds the store and this test's `$DOCKER_CONFIG` side by side.
    pub dir: PathBuf,
}

impl TestRoot {
    pub fn new(name: &str) -> TestRoot {
        let base = std::env::var_os("BERTH_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/berth-tests"));
        let dir = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store");
        std::fs::create_dir_all(&path).expect("create test root");
        TestRoot { path, dir }
    }

    /// A `berth --root <this root> ARGS…` command, ready to run.
    pub fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--root").arg(&self.path).args(args);
        // Credentials come only from what a test sets up.
        cmd.env("DOCKER_CONFIG", self.docker_config());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.berth(args).output().expect("run berth")
    }

    /// Runs berth and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs berth expecting failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "berth {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// Stores Docker-format credentials for `registry` where berth (and docker) read them.
    pub fn login_file(&self, registry: &str, user: &str, password: &str) {
        use base64::Engine as _;
        let dir = self.docker_config();
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let json = serde_json::json!({ "auths": { registry: { "auth": auth } } });
        std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
    }
}

impl TestRoot {
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
