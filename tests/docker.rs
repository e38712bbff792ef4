//! berth-runc under Docker: a dockerd of the test's own (Debian's docker.io; its own data
//! root, exec root, socket and bridge) with `--add-runtime berth=…`, and `docker run
//! --runtime berth` as a user types it. Docker's bridge networking goes through its
//! prestart hook (libnetwork-setkey), so `-p` answering on the host proves the hooks too.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::bundle::scratch;

struct Dockerd {
    dir: PathBuf,
    daemon: Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        common::fixtures();
        let dir = scratch().join("dockerd");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let runc = dir.join("berth-runc");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &runc).unwrap();
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).status();
        for args in [
            vec!["link", "add", BRIDGE, "type", "bridge"],
            vec!["addr", "add", "10.97.0.1/16", "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ] {
            assert!(Command::new("ip").args(&args).status().unwrap().success());
        }
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--add-runtime")
            .arg(format!("berth={}", runc.display()))
            // A bridge of its own: a system dockerd may own docker0.
            .args(["--bridge", BRIDGE])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd is installed (scripts/setup installs Debian's docker.io)");
        let d = Dockerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !d.docker(&["info"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    /// Debian's client beside Debian's daemon, talking to this daemon.
    fn client(&self) -> String {
        let bin = if std::path::Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        format!("{bin} -H unix://{}", self.dir.join("docker.sock").display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let client = self.client();
        let mut words = client.split(' ');
        let mut c = Command::new(words.next().unwrap());
        c.args(words).args(args);
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "web", "bg"]);
        // SAFETY: kill(2) of our own child; SIGTERM lets dockerd stop its containerd.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).status();
    }
}

/// The test dockerd's bridge.
const BRIDGE: &str = "berthtestdk0";

#[test]
fn docker_runs_containers_through_berth_runc() {
    let d = Dockerd::start();
    let busybox = common::BUSYBOX;
    let nginx = "127.0.0.1:5000/nginx:latest";
    d.ok(&["pull", "-q", busybox]);
    d.ok(&["pull", "-q", nginx]);
    let info = d.ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(info.contains("\"berth\""), "{info}");

    // Flags that become the spec: env, workdir, user, read-only root, no capabilities.
    let o = d.ok(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--user",
        "65534:65534",
        "--read-only",
        "--cap-drop",
        "ALL",
        busybox,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u); touch /x 2>&1 || true; grep CapEff /proc/self/status",
    ]);
    assert_eq!(
        o,
        "bar /tmp 65534\ntouch: /x: Read-only file system\nCapEff:\t0000000000000000\n"
    );
    // Exit codes come back; stdin with -i.
    let o = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "--network",
        "none",
        busybox,
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    let mut child = d
        .cmd(&[
            "run",
            "-i",
            "--rm",
            "--runtime",
            "berth",
            "--network",
            "none",
            busybox,
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"through stdin\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through stdin\n");
    // -t: the pty comes through the shim's console socket (script gives docker a terminal).
    let o = Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{} run -t --rm --runtime berth --network none {busybox} tty",
            d.client()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/dev/pts/0"),
        "{o:?}"
    );

    // -m: the limit is the container's cgroup's (cgroupfs driver: /docker/<id>).
    let id = d.ok(&[
        "run",
        "-d",
        "--runtime",
        "berth",
        "--network",
        "none",
        "--name",
        "bg",
        "-m",
        "64m",
        busybox,
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    let limits = [
        format!("/sys/fs/cgroup/memory/docker/{id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/docker/{id}/memory.max"),
    ];
    let limit = limits
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("the container's memory cgroup");
    assert_eq!(limit.trim(), "67108864");
    // exec, top, stop, start, restart, kill, rm -f.
    let o = d.docker(&["exec", "bg", "sh", "-c", "echo in bg; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "in bg\n");
    let top = d.ok(&["top", "bg"]);
    assert!(top.contains("sleep 1000"), "{top}");
    d.ok(&["stop", "-t", "1", "bg"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "bg"]),
        "false\n"
    );
    d.ok(&["start", "bg"]);
    d.ok(&["restart", "-t", "1", "bg"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "bg"]),
        "true\n"
    );
    d.ok(&["kill", "bg"]);
    d.ok(&["rm", "-f", "bg"]);

    // Bridge networking (Docker's prestart hook) and a published port answering on the host.
    d.ok(&[
        "run",
        "-d",
        "--runtime",
        "berth",
        "--name",
        "web",
        "-p",
        "127.0.0.1:8097:80",
        nginx,
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = Command::new("curl")
            .args(["-s", "-m", "5", "http://127.0.0.1:8097/"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&body.stdout).contains("nginx") {
            break;
        }
        assert!(Instant::now() < deadline, "nginx did not answer: {body:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    d.ok(&["rm", "-f", "web"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}
