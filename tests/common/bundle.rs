//! `Bundle`: an OCI bundle for driving `berth::runtime` directly, its rootfs an overlay on a
//! shared busybox base layer (Debian's busybox-static, `apt-get install busybox-static`),
//! installed once per test process; each bundle has its own upper/work dirs and cgroup.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth::runtime::{self, Container, Runtime, RuntimeError, SpawnOptions, Spawned, Stdio};
use nix::sys::wait::{WaitStatus, waitpid};
use oci_spec::runtime::{Linux, LinuxResources, Spec};

/// This test process's scratch directory (earlier runs' are swept the first time).
pub fn scratch() -> PathBuf {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        // Earlier runs' directories (their test process is gone) would pile up in /tmp.
        for e in fs::read_dir(std::env::temp_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("berth-rt-tests-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    });
    let p = std::env::temp_dir().join(format!("berth-rt-tests-{}", std::process::id()));
    fs::create_dir_all(&p).unwrap();
    p
}

/// The shared busybox layer: /bin/busybox + applet symlinks, /etc/passwd, /etc/group.
pub fn base_layer() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = scratch().join("base");
        let _ = fs::remove_dir_all(&base);
        make_busybox_rootfs(&base);
        base
    })
}

/// Writes a busybox rootfs (relative applet links, passwd and group) under `root`.
pub fn make_busybox_rootfs(root: &Path) {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "tests need busybox-static: apt-get install busybox-static"
    );
    for d in ["bin", "etc", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    // Copied by a `cp` process, not by this one: containers of tests on other threads are
    // cloned from this process, and one cloned while this thread held the new binary open
    // for writing would keep that descriptor until it closes its fds, so exec'ing the copy
    // could fail with "text file busy" (seen once in CI).
    let copied = Command::new("cp")
        .arg(bb)
        .arg(root.join("bin/busybox"))
        .status()
        .unwrap();
    assert!(copied.success());
    // `busybox --install -s DIR` would link to the host path of the binary: make the
    // links relative so they work inside the container.
    let list = Command::new(bb).arg("--list").output().unwrap();
    assert!(list.status.success());
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )
    .unwrap();
}

/// An OCI bundle (spec + overlay rootfs on the busybox base layer) in its own cgroup, removed
/// with its container when dropped.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The runtime's state records, inside the bundle's scratch directory.
    pub runtime: Runtime,
    pub id: String,
}

impl Bundle {
    /// A bundle whose rootfs is an overlay of `lowers` (topmost first) + fresh upper.
    pub fn overlay(name: &str, lowers: &[&Path]) -> Bundle {
        let dir = scratch().join(name);
        let _ = fs::remove_dir_all(&dir);
        for d in ["rootfs", "upper", "work"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let mut spec = berth::container::policy::default_spec().unwrap();
        let mut ann = HashMap::new();
        let lower = lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        ann.insert("org.berth.overlay.lowerdir".to_string(), lower);
        ann.insert(
            "org.berth.overlay.upperdir".to_string(),
            dir.join("upper").display().to_string(),
        );
        ann.insert(
            "org.berth.overlay.workdir".to_string(),
            dir.join("work").display().to_string(),
        );
        spec.set_annotations(Some(ann));
        let mut b = Bundle::with_spec(dir, spec, name);
        b.set_cgroup(name);
        b
    }

    pub fn new(name: &str) -> Bundle {
        Bundle::overlay(name, &[base_layer()])
    }

    /// A bundle of `spec` in `dir`, whose container is called `name`.
    pub fn with_spec(dir: PathBuf, spec: Spec, name: &str) -> Bundle {
        Bundle {
            runtime: Runtime::new(dir.join("state")),
            dir,
            spec,
            id: name.to_string(),
        }
    }

    pub fn set_cgroup(&mut self, name: &str) {
        let path = PathBuf::from(format!("/berth-test/{name}-{}", std::process::id()));
        self.linux().set_cgroups_path(Some(path));
    }

    /// The spec's `linux` section.
    pub fn linux(&mut self) -> &mut Linux {
        self.spec.linux_mut().as_mut().unwrap()
    }

    /// The spec's `linux.resources`, created empty if absent.
    pub fn resources(&mut self) -> &mut LinuxResources {
        self.linux()
            .resources_mut()
            .get_or_insert_with(Default::default)
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        let p = self.spec.process_mut().as_mut().unwrap();
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        self
    }

    pub fn opts(&self, stdio: Stdio, init: bool) -> SpawnOptions {
        SpawnOptions {
            init,
            ..SpawnOptions::new(stdio, scratch().join("cache"))
        }
    }

    pub fn spawn(&self, stdio: Stdio, init: bool) -> Result<Spawned, RuntimeError> {
        self.start(self.opts(stdio, init))
    }

    /// The runtime's one-step create and start (what berth's monitor calls).
    pub fn start(&self, opts: SpawnOptions) -> Result<Spawned, RuntimeError> {
        let (_, spawned) = self.runtime.run(&self.id, &self.dir, &self.spec, opts)?;
        Ok(spawned)
    }

    pub fn container(&self) -> Container {
        self.runtime.load(&self.id).unwrap()
    }

    /// Deletes the container (killing what is left of it); without a record, removes the
    /// cgroup a failed start may have left. Idempotent.
    pub fn cleanup(&self) -> Result<(), RuntimeError> {
        match self.runtime.load(&self.id) {
            Ok(c) => c.delete(true),
            Err(RuntimeError::NotFound(_)) => {
                let linux = self.spec.linux().as_ref().unwrap();
                runtime::remove_cgroup(linux.cgroups_path().as_ref().unwrap())
            }
            Err(e) => Err(e),
        }
    }

    /// Spawns with stdout and stderr to fresh pipes; returns their read ends too (hold them
    /// while the container may write).
    pub fn spawn_piped(&self, init: bool) -> (Spawned, OwnedFd, OwnedFd) {
        let (stdio, out, err) = pipes();
        (self.spawn(stdio, init).unwrap(), out, err)
    }

    /// Runs to completion with piped stdout/stderr: (exit code, stdout, stderr).
    pub fn run_with(&self, init: bool) -> Result<(i32, String, String), RuntimeError> {
        let (stdio, out_r, err_r) = pipes();
        let res = self.spawn(stdio, init);
        let s = match res {
            Ok(s) => s,
            Err(e) => {
                self.cleanup().unwrap();
                return Err(e);
            }
        };
        let errt = std::thread::spawn(move || read_all(err_r));
        let out = read_all(out_r);
        let err = errt.join().unwrap();
        let code = wait(&s);
        self.cleanup().unwrap();
        Ok((code, out, err))
    }

    pub fn run(&self) -> (i32, String, String) {
        self.run_with(false).unwrap()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.cleanup();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Stdout and stderr to fresh pipes, no stdin; with the pipes' read ends.
pub fn pipes() -> (Stdio, OwnedFd, OwnedFd) {
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let (err_r, err_w) = nix::unistd::pipe().unwrap();
    let stdio = Stdio::Fds {
        stdin: None,
        stdout: out_w,
        stderr: err_w,
    };
    (stdio, out_r, err_r)
}

/// Everything readable from `fd` until EOF, as text.
pub fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    let _ = fs::File::from(fd).read_to_string(&mut s);
    s
}

/// Waits for the container's process: its exit code, or 128 + the signal that ended it.
pub fn wait(s: &Spawned) -> i32 {
    match waitpid(s.pid, None).unwrap() {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        other => panic!("unexpected wait status {other:?}"),
    }
}
