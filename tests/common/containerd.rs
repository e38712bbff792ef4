//! A containerd of the test's own (Debian's containerd 1.6): root, state and socket in the test
//! process's scratch directory, so it neither sees nor disturbs the host's containerd. Used by
//! tests/containerd.rs (`ctr --runc-binary`, CRI plugin off) and tests/cri.rs (the CRI plugin
//! with a `berth` runtime handler, as the kubelet drives it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::bundle::scratch;
use super::wait::slow;

pub struct Containerd {
    /// Holds config.toml, root/, state/, the socket, containerd.log and the berth-runc link.
    pub dir: PathBuf,
    daemon: Child,
    /// A symlink to the berth binary named berth-runc: that name makes it speak runc's CLI.
    pub runc: PathBuf,
}

impl Containerd {
    /// Starts containerd in `scratch()/name`; `plugins(dir, runc)` gives the config's lines between
    /// the root and state settings and the `[grpc]` table (`dir` is the containerd directory, `runc` the
    /// berth-runc link). Waits until `ctr version` answers.
    pub fn start(name: &str, plugins: impl FnOnce(&Path, &Path) -> String) -> Containerd {
        super::fixtures();
        let dir = scratch().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let runc = dir.join("berth-runc");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &runc).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n{1}\n\
                 [grpc]\n  address = \"{0}/containerd.sock\"\n",
                dir.display(),
                plugins(&dir, &runc)
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (scripts/setup installs Debian's containerd)");
        let c = Containerd { dir, daemon, runc };
        let deadline = Instant::now() + slow(Duration::from_secs(60));
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.socket()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(
            o.status.success(),
            "ctr {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn runc(&self) -> &str {
        self.runc.to_str().unwrap()
    }

    /// Pids of the shims this containerd started (their command line names its socket).
    pub fn shims(&self) -> Vec<u32> {
        let socket = self.socket();
        let socket = socket.to_string_lossy();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline.contains("containerd-shim") && cmdline.contains(&*socket)
            })
            .collect()
    }

    /// Mount points at or below the containerd directory.
    pub fn mounts(&self) -> Vec<String> {
        let prefix = format!("{}/", self.dir.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Containerd {
    /// A test that failed half-way leaves tasks (and their shims) running: containerd ends
    /// them first, which has the runtime delete them and unmount their rootfs; then what is
    /// still mounted below the directory (a CRI sandbox's /dev/shm) is detached.
    fn drop(&mut self) {
        let namespaces = self.ctr(&["namespaces", "ls", "-q"]);
        for ns in String::from_utf8_lossy(&namespaces.stdout).lines() {
            let tasks = self.ctr(&["-n", ns, "task", "ls", "-q"]);
            for id in String::from_utf8_lossy(&tasks.stdout).lines() {
                let _ = self.ctr(&["-n", ns, "task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["-n", ns, "task", "rm", "-f", id]);
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for m in self.mounts().iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}
