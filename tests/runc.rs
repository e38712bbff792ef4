//! `berth-runc`: the berth binary under runc's name, driven on bundle directories as
//! containerd's shim drives runc — this test process is a subreaper, as the shim is, so the
//! containers' inits become its children once `create` exits.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::bundle::{make_busybox_rootfs, scratch};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use serde_json::Value;

/// A `berth-runc` link to the berth binary under test.
fn runc_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The shim's role: orphaned inits are reparented to us, and we reap them.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let link = scratch().join("berth-runc");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &link).unwrap();
        link
    })
}

/// A bundle (busybox rootfs, `berth-runc spec`'s config adjusted) and a state root.
struct Runc {
    dir: PathBuf,
    root: PathBuf,
}

impl Runc {
    fn new(name: &str, args: &[&str]) -> Runc {
        let dir = scratch().join(format!("runc-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        make_busybox_rootfs(&dir.join("rootfs"));
        let r = Runc {
            root: dir.join("state"),
            dir,
        };
        let spec = Command::new(runc_bin())
            .args(["spec", "--bundle"])
            .arg(&r.dir)
            .output()
            .unwrap();
        assert!(spec.status.success(), "{spec:?}");
        let mut config: Value =
            serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        config["linux"]["cgroupsPath"] =
            Value::from(format!("/berth-runc-test/{name}-{}", std::process::id()));
        r.write_config(&config);
        r
    }

    fn write_config(&self, config: &Value) {
        fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runc_bin());
        c.arg("--root").arg(&self.root).args(args);
        c.current_dir(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth-runc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// For commands that leave a process behind (`run -d`, `exec -d`): that process keeps
    /// the stdio it inherited, so a pipe would never reach EOF; files do not wait.
    fn ok_detached(&self, args: &[&str]) {
        let log = self.dir.join("detached.out");
        self.status_to(self.cmd(args), &log);
    }

    /// Runs `cmd` with its stdout and stderr to the file `out` and asserts it succeeded.
    fn status_to(&self, mut cmd: Command, out: &Path) {
        let f = fs::File::create(out).unwrap();
        let status = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "berth-runc {cmd:?}: {}",
            fs::read_to_string(out).unwrap()
        );
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// `create` with the container's stdout and stderr going to `out`.
    fn create(&self, id: &str, out: &Path) -> i32 {
        let pid_file = self.dir.join(format!("{id}.pid"));
        let mut cmd = self.cmd(&["create", "--bundle", ".", "--pid-file"]);
        cmd.arg(&pid_file).arg(id);
        self.status_to(cmd, out);
        fs::read_to_string(&pid_file).unwrap().parse().unwrap()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.run(&["delete", "--force", &id]);
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reap(pid: i32) -> i32 {
    match waitpid(Pid::from_raw(pid), None).unwrap() {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn create_start_state_list_ps_pause_kill_delete() {
    let r = Runc::new(
        "lifecycle",
        &["sh", "-c", "echo hello from init; exec sleep 1000"],
    );
    let out = r.dir.join("out");
    let pid = r.create("c1", &out);

    let st = r.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["id"], "c1");
    assert_eq!(st["bundle"], r.dir.display().to_string());
    assert_eq!(st["rootfs"], r.dir.join("rootfs").display().to_string());
    assert_eq!(st["owner"], "root");
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "",
        "nothing runs before start"
    );

    r.ok(&["start", "c1"]);
    wait_for("the init's output", || {
        fs::read_to_string(&out).unwrap() == "hello from init\n"
    });
    assert_eq!(r.state("c1")["status"], "running");
    let err = r.run(&["start", "c1"]);
    assert_eq!(err.status.code(), Some(1), "a second start fails");

    let list = r.ok(&["list"]);
    let mut lines = list.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID  ") && header.contains("PID") && header.ends_with("OWNER"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["c1", &pid.to_string(), "running"]);
    assert_eq!(r.ok(&["list", "-q"]), "c1\n");
    let json: Value = serde_json::from_str(&r.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], "c1");

    let pids: Vec<i32> = serde_json::from_str(&r.ok(&["ps", "--format", "json", "c1"])).unwrap();
    assert_eq!(pids, [pid]);
    // Without a `ps` on the host: read from /proc.
    let out = r
        .cmd(&["ps", "c1"])
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(
        table.lines().skip(1).any(|l| l.contains("sleep 1000")),
        "{table}"
    );

    r.ok(&["pause", "c1"]);
    assert_eq!(r.state("c1")["status"], "paused");
    r.ok(&["resume", "c1"]);
    assert_eq!(r.state("c1")["status"], "running");

    let refused = r.run(&["delete", "c1"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a running container is not deleted"
    );
    r.ok(&["kill", "c1", "KILL"]);
    assert_eq!(reap(pid), 128 + 9);
    let st = r.state("c1");
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    assert_eq!(
        r.run(&["kill", "c1"]).status.code(),
        Some(1),
        "kill of a stopped container"
    );
    // With --all it is no error, as with runc: containerd's shim sends it after every exit to
    // end what the init left in its cgroup (here nothing).
    r.ok(&["kill", "--all", "c1", "KILL"]);
    r.ok(&["delete", "c1"]);
    assert_eq!(r.run(&["state", "c1"]).status.code(), Some(1));
    assert_eq!(r.ok(&["list", "-q"]), "");
    let cg = format!(
        "/sys/fs/cgroup/pids/berth-runc-test/lifecycle-{}",
        std::process::id()
    );
    assert!(!Path::new(&cg).exists(), "the cgroup went with delete");
}

#[test]
fn run_foreground_detached_and_delete_force() {
    let r = Runc::new("run", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let out = r.run(&["run", "fg"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(
        r.ok(&["list", "-q"]),
        "",
        "run without -d deletes its container"
    );

    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    config["process"]["args"] = ["sleep", "1000"].iter().map(|a| Value::from(*a)).collect();
    r.write_config(&config);
    r.ok_detached(&["run", "-d", "--pid-file", "bg.pid", "bg"]);
    let pid: i32 = fs::read_to_string(r.dir.join("bg.pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.state("bg")["status"], "running");
    r.ok(&["delete", "--force", "bg"]);
    assert_eq!(reap(pid), 128 + 9);
    assert_eq!(r.run(&["state", "bg"]).status.code(), Some(1));
    r.ok(&["delete", "--force", "never-existed"]);
    assert_eq!(r.run(&["delete", "never-existed"]).status.code(), Some(1));
}

#[test]
fn exec_with_args_and_process_file() {
    let r = Runc::new("exec", &["sleep", "1000"]);
    let out = r.dir.join("out");
    let pid = r.create("c1", &out);
    r.ok(&["start", "c1"]);

    // The process's exit status is exec's.
    let o = r.run(&["exec", "c1", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    let o = r.run(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "c1",
        "sh",
        "-c",
        "echo $FOO in $(pwd); id -u",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "bar in /tmp\n0\n");
    let o = r.run(&["exec", "--user", "65534:65534", "c1", "id"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    );

    let process = serde_json::json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": ["sh", "-c", "echo from file; cat /proc/1/cmdline"],
        "env": ["PATH=/bin"],
        "cwd": "/"
    });
    fs::write(r.dir.join("process.json"), process.to_string()).unwrap();
    let o = r.run(&[
        "exec",
        "--process",
        "process.json",
        "--pid-file",
        "exec.pid",
        "c1",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "from file\nsleep\u{0}1000\u{0}"
    );
    assert!(r.dir.join("exec.pid").exists());

    r.ok_detached(&["exec", "-d", "c1", "sleep", "1000"]);
    let pids: Vec<i32> = serde_json::from_str(&r.ok(&["ps", "--format", "json", "c1"])).unwrap();
    assert_eq!(
        pids.len(),
        2,
        "the detached exec runs in the container: {pids:?}"
    );
    r.ok(&["kill", "--all", "c1", "9"]);
    // The detached process was reparented to us (the subreaper): the init, PID 1 of its
    // namespace, finishes dying only once we have reaped it.
    for p in pids.iter().filter(|p| **p != pid) {
        assert_eq!(reap(*p), 128 + 9);
    }
    assert_eq!(reap(pid), 128 + 9);
    r.ok(&["delete", "c1"]);
}

#[test]
fn console_socket_receives_the_pty_master() {
    let r = Runc::new("console", &["sh"]);
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = Value::Bool(true);
    r.write_config(&config);
    let sock = r.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel installed this descriptor for us.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        fd.expect("a descriptor with the message")
    });
    let status = r
        .cmd(&["create", "--console-socket"])
        .arg(&sock)
        .args(["--pid-file", "c.pid", "tty1"])
        .status()
        .unwrap();
    assert!(status.success());
    let master = fs::File::from(receiver.join().unwrap());
    let pid: i32 = fs::read_to_string(r.dir.join("c.pid"))
        .unwrap()
        .parse()
        .unwrap();
    r.ok(&["start", "tty1"]);
    let mut w = master.try_clone().unwrap();
    w.write_all(b"tty; exit 7\n").unwrap();
    let mut seen = Vec::new();
    let mut reader = master;
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("/dev/pts/0") && Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("/dev/pts/0"),
        "{seen:?}"
    );
    assert_eq!(reap(pid), 7);
    r.ok(&["delete", "tty1"]);
    // A terminal without a socket to send it to is refused, as runc refuses it.
    let o = r.run(&["create", "tty2"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn errors_go_to_the_log_as_json_lines() {
    let r = Runc::new("log", &["true"]);
    let log = r.dir.join("log.json");
    let o = r
        .cmd(&["--log"])
        .arg(&log)
        .args(["--log-format", "json", "state", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container nope does not exist");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    // Without --log, text on stderr.
    let o = r.run(&["kill", "nope", "TERM"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("level=error msg=\"container nope does not exist\""),
        "{err}"
    );
    // Bad input: one line, exit 1.
    assert_eq!(r.run(&["kill", "nope", "NOSIG"]).status.code(), Some(1));
    assert_eq!(r.run(&["create", "bad/id"]).status.code(), Some(1));
    let o = r.run(&["spec"]);
    assert_eq!(o.status.code(), Some(1), "config.json exists already");
}

#[test]
fn version_and_features() {
    let o = Command::new(runc_bin()).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("berth-runc version "), "{text}");
    assert!(text.contains("spec: 1.2.0"), "{text}");
    let o = Command::new(runc_bin()).arg("features").output().unwrap();
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    let hooks = f["hooks"].as_array().unwrap();
    assert!(hooks.contains(&Value::from("prestart")) && hooks.contains(&Value::from("poststop")));
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&Value::from("pid"))
    );
}

#[test]
fn hooks_get_the_state_on_stdin_at_their_points() {
    let r = Runc::new("hooks", &["sh", "-c", "exec sleep 1000"]);
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    let record = |name: &str| {
        let file = r.dir.join(format!("{name}.json"));
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo $HOOK_ENV >> {}.env", file.display(), file.display())],
            "env": [format!("HOOK_ENV={name}-env")],
            "timeout": 30
        })
    };
    config["hooks"] = serde_json::json!({
        "prestart": [record("prestart")],
        "createRuntime": [record("createRuntime")],
        "poststart": [record("poststart")],
        "poststop": [record("poststop")],
    });
    r.write_config(&config);
    let pid = r.create("h1", &r.dir.join("out"));
    let read = |name: &str| -> Value {
        serde_json::from_slice(&fs::read(r.dir.join(format!("{name}.json"))).unwrap()).unwrap()
    };
    for name in ["prestart", "createRuntime"] {
        let st = read(name);
        assert_eq!(st["status"], "creating", "{name}");
        assert_eq!(st["pid"], pid, "{name}");
        assert_eq!(st["id"], "h1");
        assert_eq!(
            fs::read_to_string(r.dir.join(format!("{name}.json.env"))).unwrap(),
            format!("{name}-env\n")
        );
    }
    assert!(!r.dir.join("poststart.json").exists());
    r.ok(&["start", "h1"]);
    assert_eq!(read("poststart")["status"], "running");
    r.ok(&["kill", "h1", "KILL"]);
    assert_eq!(reap(pid), 128 + 9);
    r.ok(&["delete", "h1"]);
    assert_eq!(read("poststop")["status"], "stopped");

    // A failing prestart hook fails create, and nothing is left.
    config["hooks"] = serde_json::json!({ "prestart": [{ "path": "/bin/false" }] });
    r.write_config(&config);
    let o = r.run(&["create", "h2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("prestart hook /bin/false"),
        "{o:?}"
    );
    assert_eq!(r.ok(&["list", "-q"]), "");
}

/// `cmd` gets `files` as its fds 3, 4, …; every other descriptor above 2 closes at its exec
/// (whatever the test harness itself inherited), so the runtime sees exactly these.
fn with_fds(cmd: &mut Command, files: &[&fs::File]) {
    let raw: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    let n = raw.len();
    // SAFETY: the closure only makes fcntl/dup2/close_range calls on a vector allocated
    // before the fork, which it reads without allocating.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            let mut high = [0i32; 8];
            for (i, fd) in raw.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in high[..n].iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            libc::syscall(
                libc::SYS_close_range,
                3 + n as u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        })
    };
}

#[test]
fn preserve_fds_reach_the_process_at_their_numbers() {
    // fd 3: where the container writes; fd 4: what it reads; fd 5: passed to berth-runc
    // but beyond N, so the container must not get it.
    let script = "echo three >&3; cat <&4 >&3; if [ -e /proc/self/fd/5 ]; then echo fd5 leaked; fi";
    let r = Runc::new("preserve", &["sh", "-c", script]);
    let input = r.dir.join("input");
    fs::write(&input, "from four\n").unwrap();
    let open_all = |name: &str| {
        let out = fs::File::create(r.dir.join(name)).unwrap();
        let inp = fs::File::open(&input).unwrap();
        let extra = fs::File::open(&input).unwrap();
        (out, inp, extra)
    };

    // run (foreground)
    let (out, inp, extra) = open_all("run.out");
    let mut cmd = r.cmd(&["run", "--preserve-fds", "2", "fg"]);
    with_fds(&mut cmd, &[&out, &inp, &extra]);
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "fd 5 is not passed");
    assert_eq!(
        fs::read_to_string(r.dir.join("run.out")).unwrap(),
        "three\nfrom four\n"
    );

    // create + start: the parked init keeps them until its exec.
    let (out, inp, extra) = open_all("create.out");
    let mut cmd = r.cmd(&["create", "--preserve-fds", "2", "--pid-file", "c.pid", "c1"]);
    with_fds(&mut cmd, &[&out, &inp, &extra]);
    r.status_to(cmd, &r.dir.join("c1.stdout"));
    drop((out, inp, extra));
    let pid: i32 = fs::read_to_string(r.dir.join("c.pid"))
        .unwrap()
        .parse()
        .unwrap();
    r.ok(&["start", "c1"]);
    assert_eq!(reap(pid), 0);
    assert_eq!(
        fs::read_to_string(r.dir.join("create.out")).unwrap(),
        "three\nfrom four\n"
    );
    assert_eq!(fs::read_to_string(r.dir.join("c1.stdout")).unwrap(), "");
    r.ok(&["delete", "c1"]);

    // exec into a running container.
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    config["process"]["args"] = ["sleep", "1000"].iter().map(|a| Value::from(*a)).collect();
    r.write_config(&config);
    let pid = r.create("c2", &r.dir.join("c2.out"));
    r.ok(&["start", "c2"]);
    let exec_out = fs::File::create(r.dir.join("exec.out")).unwrap();
    let mut cmd = r.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        "c2",
        "sh",
        "-c",
        "echo exec >&3",
    ]);
    with_fds(&mut cmd, &[&exec_out]);
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        fs::read_to_string(r.dir.join("exec.out")).unwrap(),
        "exec\n"
    );
    // Without the flag the process gets none of them.
    let mut cmd = r.cmd(&["exec", "c2", "sh", "-c", "echo no >&3"]);
    with_fds(&mut cmd, &[&exec_out]);
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(!o.status.success(), "fd 3 is closed without --preserve-fds");
    assert_eq!(
        fs::read_to_string(r.dir.join("exec.out")).unwrap(),
        "exec\n"
    );
    r.ok(&["kill", "c2", "KILL"]);
    assert_eq!(reap(pid), 128 + 9);
    r.ok(&["delete", "c2"]);

    // A descriptor in the range that is not open: refused, nothing created.
    let (out, _, _) = open_all("gap.out");
    let mut cmd = r.cmd(&["create", "--preserve-fds", "3", "gap"]);
    with_fds(&mut cmd, &[&out]);
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("file descriptor 4 is not open"),
        "{o:?}"
    );
    assert_eq!(r.ok(&["list", "-q"]), "");
}

#[test]
fn events_reports_stats_and_oom() {
    let r = Runc::new("events", &["sleep", "1000"]);
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    let limit: u64 = 8 << 20;
    config["linux"]["resources"]["memory"] = serde_json::json!({ "limit": limit });
    config["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 10 });
    r.write_config(&config);

    let pid = r.create("s1", &r.dir.join("s1.out"));
    r.ok(&["start", "s1"]);
    let out = r.ok(&["events", "--stats", "s1"]);
    assert_eq!(out.lines().count(), 1, "one event: {out}");
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], "s1");
    let data = &ev["data"];
    assert_eq!(data["pids"]["current"], 1, "{data}");
    assert_eq!(data["pids"]["limit"], 10, "{data}");
    assert_eq!(data["memory"]["usage"]["limit"], limit, "{data}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{data}"
    );
    assert!(
        data["memory"]["raw"].as_object().unwrap().len() > 5,
        "{data}"
    );
    assert!(
        data["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{data}"
    );
    r.ok(&["kill", "s1", "KILL"]);
    assert_eq!(reap(pid), 128 + 9);
    let o = r.run(&["events", "--stats", "s1"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stopped container has no events"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("container with id s1 is not running"),
        "{o:?}"
    );
    r.ok(&["delete", "s1"]);

    // The stream: stats every interval, the OOM as it happens, the end with the container.
    config["process"]["args"] = serde_json::json!(["tail", "/dev/zero"]);
    r.write_config(&config);
    let pid = r.create("o1", &r.dir.join("o1.out"));
    let mut events = r
        .cmd(&["events", "--interval", "100ms", "o1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || -> Option<Value> {
        rx.recv_timeout(Duration::from_secs(60))
            .ok()
            .map(|l| serde_json::from_str(&l).unwrap())
    };
    let first = next().expect("a stats event before the start");
    assert_eq!(first["type"], "stats");
    assert_eq!(first["id"], "o1");
    r.ok(&["start", "o1"]);
    let mut seen_oom = false;
    while let Some(ev) = next() {
        if ev["type"] == "oom" {
            assert_eq!(ev["id"], "o1");
            assert!(ev.get("data").is_none(), "{ev}");
            seen_oom = true;
        } else {
            assert_eq!(ev["type"], "stats", "{ev}");
        }
    }
    assert!(seen_oom, "an oom event");
    assert_eq!(reap(pid), 128 + 9, "the OOM killer killed the init");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = events.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "events ends with its container");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    r.ok(&["delete", "o1"]);
}

/// The namespace `/proc/PID/ns/NAME` refers to, as `user:[4026531837]`.
fn ns_of(pid: i32, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn user_namespace_with_maps_and_joined_by_path() {
    let r = Runc::new("userns", &["sleep", "1000"]);
    // The container's root makes missing mount points as the namespace's root, which may
    // not write to the host root's directories: the bundle provides them (as for runc).
    let mount_points = |r: &Runc| {
        for d in ["proc", "dev", "sys"] {
            fs::create_dir_all(r.dir.join("rootfs").join(d)).unwrap();
        }
    };
    mount_points(&r);
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "type": "user" }));
    config["linux"]["uidMappings"] =
        serde_json::json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    config["linux"]["gidMappings"] =
        serde_json::json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    r.write_config(&config);
    let pid = r.create("u1", &r.dir.join("u1.out"));
    r.ok(&["start", "u1"]);
    assert_ne!(ns_of(pid, "user"), ns_of(std::process::id() as i32, "user"));
    // Root inside is 100000 outside.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ids = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(ids("Uid:"), "100000");
    assert_eq!(ids("Gid:"), "200000");
    let o = r.run(&[
        "exec",
        "u1",
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["0"],
            vec!["0"],
            vec!["0", "100000", "65536"],
            vec!["0", "200000", "65536"]
        ],
        "{text}"
    );

    // Another container joins its user (and pid) namespace by path and makes the rest.
    let r2 = Runc::new("userns-join", &["sleep", "1000"]);
    mount_points(&r2);
    let mut config: Value =
        serde_json::from_slice(&fs::read(r2.dir.join("config.json")).unwrap()).unwrap();
    let nss = config["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "pid");
    nss.push(serde_json::json!({ "type": "user", "path": format!("/proc/{pid}/ns/user") }));
    nss.push(serde_json::json!({ "type": "pid", "path": format!("/proc/{pid}/ns/pid") }));
    r2.write_config(&config);
    let pid2 = r2.create("u2", &r2.dir.join("u2.out"));
    r2.ok(&["start", "u2"]);
    assert_eq!(ns_of(pid2, "user"), ns_of(pid, "user"));
    assert_eq!(ns_of(pid2, "pid"), ns_of(pid, "pid"));
    assert_ne!(
        ns_of(pid2, "net"),
        ns_of(pid, "net"),
        "its own network namespace"
    );
    assert_ne!(ns_of(pid2, "mnt"), ns_of(pid, "mnt"));
    let o = r2.run(&[
        "exec",
        "u2",
        "sh",
        "-c",
        "id -u; ls /proc | grep -c '^[0-9]'",
    ]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"));
    let procs: u32 = lines.next().unwrap().parse().unwrap();
    assert!(
        procs >= 3,
        "u1's and u2's processes share the pid namespace: {text}"
    );
    r2.ok(&["kill", "u2", "KILL"]);
    assert_eq!(reap(pid2), 128 + 9);
    r2.ok(&["delete", "u2"]);
    r.ok(&["kill", "u1", "KILL"]);
    assert_eq!(reap(pid), 128 + 9);
    r.ok(&["delete", "u1"]);

    // Maps are required with a new user namespace.
    config["linux"]["namespaces"] = serde_json::json!([{ "type": "mount" }, { "type": "user" }]);
    r2.write_config(&config);
    let o = r2.run(&["create", "u3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no uid mappings found"),
        "{o:?}"
    );
}

#[test]
fn time_namespace_personality_and_oom_score_adj() {
    let r = Runc::new(
        "timens",
        &[
            "sh",
            "-c",
            "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime; uname -m; cat /proc/self/oom_score_adj",
        ],
    );
    let mut config: Value =
        serde_json::from_slice(&fs::read(r.dir.join("config.json")).unwrap()).unwrap();
    let (mono, boot) = (10 * 86400, 20 * 86400);
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "type": "time" }));
    config["linux"]["timeOffsets"] = serde_json::json!({
        "monotonic": { "secs": mono, "nanosecs": 0 },
        "boottime": { "secs": boot, "nanosecs": 0 },
    });
    config["linux"]["personality"] = serde_json::json!({ "domain": "LINUX32" });
    // Raising it needs no privilege (lowering it does: this host lacks CAP_SYS_RESOURCE).
    let ours: i32 = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let adj = (ours + 100).min(1000);
    config["process"]["oomScoreAdj"] = Value::from(adj);
    r.write_config(&config);
    let o = r.run(&["run", "t1"]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let mut offsets: Vec<Vec<&str>> = lines[..2]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    offsets.sort();
    assert_eq!(
        offsets,
        [
            vec!["boottime", &boot.to_string(), "0"],
            vec!["monotonic", &mono.to_string(), "0"]
        ]
    );
    let host_uptime: u64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let uptime: u64 = lines[2].parse().unwrap();
    assert!(
        uptime >= boot as u64 + host_uptime - 5,
        "the boottime offset shows in /proc/uptime: {uptime} (host {host_uptime})"
    );
    assert_eq!(lines[3], "i686", "LINUX32 personality");
    assert_eq!(lines[4], adj.to_string());

    // Offsets without the namespace are refused.
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "time");
    r.write_config(&config);
    let o = r.run(&["run", "t2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without a new time namespace"),
        "{o:?}"
    );
}
