//! Acceptance tests of `berth run`, `create` and `start` (issue 4), against the fixture
//! registries, as root. Each test has its own store (`TestRoot`).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::output::{describe, is_hex, text};
use common::procs::cgroup_dirs;
use common::pty::PtySession;
use common::run_cli::{
    DEFAULT_CAPS, container_status, host_mountinfo, root_with, run_ok, run_out, sh_ok, sh_out,
    status_field,
};
use common::wait::slow;
use common::{BUSYBOX, DEBIAN, TestRoot, fixtures};

const MULTILAYER: &str = "127.0.0.1:5000/multilayer:latest";

/// Entries of `<root>/containers/` other than the store's `lock` file.
fn container_dirs(root: &TestRoot) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.path.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lock")
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn assert_no_containers(root: &TestRoot) {
    assert_eq!(
        container_dirs(root),
        Vec::<String>::new(),
        "container records were left behind"
    );
}

/// Nothing of container `id` is left: no directory, runtime dir, cgroup or mount.
fn assert_nothing_left(root: &TestRoot, id: &str, mounts_before: &BTreeSet<String>) {
    assert_no_containers(root);
    let run_dir = Path::new("/run/berth").join(id);
    assert!(!run_dir.exists(), "{} was left behind", run_dir.display());
    let left = cgroup_dirs(id);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    let after = host_mountinfo();
    let new: Vec<&String> = after.difference(mounts_before).collect();
    assert!(
        new.iter().all(|l| !l.contains(id) && !l.contains("berth")),
        "new host mounts: {new:#?}"
    );
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&root.path.display().to_string()),
        "a mount of the store is in the host's mount table:\n{mi}"
    );
}

/// SIGKILLs the running containers of `root` (after a test failed half-way, so no container
/// outlives the test), then waits for their monitors to finish cleaning up.
fn kill_containers(root: &TestRoot) {
    let mut monitors = Vec::new();
    for id in container_dirs(root) {
        let state = root.path.join("containers").join(&id).join("state.json");
        if let Ok(bytes) = std::fs::read(state)
            && let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && state["status"] == "running"
            && let Some(pid) = state["pid"].as_i64()
            && pid > 0
        {
            // SAFETY: kill(2) of a container process this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            if let Some(monitor) = state["monitor_pid"].as_i64() {
                monitors.push(monitor as i32);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only checks that the process exists.
    while monitors.iter().any(|m| unsafe { libc::kill(*m, 0) } == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills what is left of a test's containers when the test ends, passed or failed.
struct Reaper<'a>(&'a TestRoot);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        kill_containers(self.0);
    }
}

// ---------------------------------------------------------------------------------------
// A real terminal.

const T: Duration = Duration::from_secs(20);

/// Runs `echo` of a marker computed by the shell (so the typed-in echo of the command line
/// never matches) after `command`, and returns `command`'s output.
fn shell(pty: &mut PtySession, command: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let begin = format!("B{n}x{}B", n + 1);
    let end = format!("E{n}x{}E", n + 2);
    pty.send(&format!(
        "echo B{n}x$(({n}+1))B; {command}; echo E{n}x$(({n}+2))E\r"
    ));
    pty.expect(&begin, T);
    let out = pty.expect(&end, T);
    out.replace('\r', "").trim().to_string()
}

/// `berth run -it --rm IMAGE SHELL` in a 40×100 terminal, with the prompt up.
fn interactive_shell(root: &TestRoot, image: &str, shell: &str) -> PtySession {
    let cmd = root.berth(&["run", "-it", "--rm", image, shell]);
    let mut pty = PtySession::spawn(cmd, 40, 100);
    pty.expect("# ", T);
    pty
}

#[test]
fn tty_bash_session() {
    let root = root_with("tty", DEBIAN);
    let _reaper = Reaper(&root);
    let mounts_before = host_mountinfo();
    let mut pty = interactive_shell(&root, DEBIAN, "bash");
    let before = pty.initial.clone();
    assert_ne!(pty.termios(), before, "raw while the container runs");
    let ids = container_dirs(&root);
    assert_eq!(ids.len(), 1, "one container dir while running: {ids:?}");
    let id = ids[0].clone();
    assert!(is_hex(&id, 64), "container dir {id}");

    assert_eq!(shell(&mut pty, "echo $$"), "1");
    let hostname = shell(&mut pty, "hostname");
    assert!(is_hex(&hostname, 12), "hostname {hostname:?}");
    assert_eq!(hostname, id[..12]);
    let ps = shell(&mut pty, "ps -e -o pid=,comm=");
    let procs: Vec<(u32, String)> = ps
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(procs.len(), 2, "only bash and ps are visible:\n{ps}");
    assert_eq!(procs[0], (1, "bash".to_string()), "{ps}");
    assert_eq!(procs[1].1, "ps", "{ps}");
    // The pty is the controlling terminal, as in Docker (/dev/pts/0, also /dev/console).
    assert_eq!(shell(&mut pty, "tty"), "/dev/pts/0");
    assert_eq!(
        shell(&mut pty, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty"),
        "tty"
    );

    // The container's mounts are not in the host's table while it runs either.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&id), "{mi}");
    assert!(!mi.contains(&root.path.display().to_string()), "{mi}");

    pty.send("exit 3\r");
    assert_eq!(pty.wait(T), 3);
    let after = pty.termios();
    assert_eq!(before, after, "berth left the terminal as it was");
    assert_nothing_left(&root, &id, &mounts_before);
}

#[test]
fn tty_is_raw_while_running_and_restored_after() {
    let root = root_with("ttyraw", BUSYBOX);
    let _reaper = Reaper(&root);
    // A terminal in the usual cooked mode, as a login shell has it.
    let cmd = root.berth(&["run", "-it", "--rm", BUSYBOX, "sh"]);
    let mut pty = PtySession::spawn(cmd, 24, 80);
    let cooked = pty.initial.clone();
    pty.expect("# ", T);
    let raw = pty.termios();
    assert_ne!(raw, cooked, "the terminal is raw while the container runs");
    assert_eq!(
        raw.local & libc::ECHO as u64,
        0,
        "no local echo in raw mode"
    );
    assert_eq!(
        raw.local & libc::ICANON as u64,
        0,
        "not canonical in raw mode"
    );
    pty.send("exit 0\r");
    assert_eq!(pty.wait(T), 0);
    assert_eq!(pty.termios(), cooked, "terminal restored");
}

#[test]
fn tty_restored_after_start_failure() {
    let root = root_with("ttyfail", BUSYBOX);
    let _reaper = Reaper(&root);
    let cmd = root.berth(&["run", "-it", "--rm", BUSYBOX, "nope"]);
    let mut pty = PtySession::spawn(cmd, 24, 80);
    let before = pty.initial.clone();
    assert_eq!(pty.wait(T), 127);
    // Waits for the reader thread too, which may not have caught up with the exit.
    pty.expect("exec: \"nope\": executable file not found in $PATH", T);
    assert_eq!(pty.termios(), before);
    assert_no_containers(&root);
}

#[test]
fn tty_restored_when_berth_is_terminated() {
    let root = root_with("ttyterm", BUSYBOX);
    let _reaper = Reaper(&root);
    let cmd = root.berth(&["run", "-it", "--rm", BUSYBOX, "sh"]);
    let mut pty = PtySession::spawn(cmd, 24, 80);
    pty.expect("# ", T);
    assert_ne!(pty.termios(), pty.initial);
    // SAFETY: signalling the berth CLI we started.
    unsafe { libc::kill(pty.child.id() as i32, libc::SIGTERM) };
    let code = pty.wait(T);
    assert_ne!(code, 0);
    assert_eq!(
        pty.termios(),
        pty.initial,
        "terminal restored after SIGTERM"
    );
}

#[test]
fn tty_window_size_at_start_and_on_resize() {
    let root = root_with("ttysize", BUSYBOX);
    let _reaper = Reaper(&root);
    let mut pty = interactive_shell(&root, BUSYBOX, "sh");
    assert_eq!(shell(&mut pty, "stty size"), "40 100");
    pty.resize(50, 132);
    // The size travels CLI → monitor → container pty asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let size = shell(&mut pty, "stty size");
        if size == "50 132" {
            break;
        }
        assert!(Instant::now() < deadline, "size after resize: {size}");
        std::thread::sleep(Duration::from_millis(100));
    }
    pty.send("exit\r");
    assert_eq!(pty.wait(T), 0);
}

#[test]
fn tty_size_is_set_before_the_command_starts() {
    let root = root_with("ttysize0", BUSYBOX);
    let _reaper = Reaper(&root);
    for _ in 0..10 {
        let cmd = root.berth(&["run", "-it", "--rm", BUSYBOX, "stty", "size"]);
        let mut pty = PtySession::spawn(cmd, 40, 100);
        pty.wait(T);
        // The reader thread may not have caught up with the exit: wait for the line.
        let out = pty.expect("\n", T);
        assert_eq!(out.trim(), "40 100", "size seen by the command at start");
    }
}

#[test]
fn tty_ctrl_c_reaches_the_container() {
    let root = root_with("ttyintr", BUSYBOX);
    let _reaper = Reaper(&root);
    let mut pty = interactive_shell(&root, BUSYBOX, "sh");
    pty.send("sleep 100; echo S$((7*6))S\r");
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    pty.send("\x03");
    // The prompt comes back (the sleep died of SIGINT, the rest of the line is dropped).
    pty.expect("# ", Duration::from_secs(10));
    assert!(start.elapsed() < slow(Duration::from_secs(10)));
    assert_eq!(shell(&mut pty, "echo alive"), "alive");
    assert!(!pty.transcript().contains("S42S"), "{}", pty.transcript());
    pty.send("exit 0\r");
    assert_eq!(pty.wait(T), 0, "berth itself was not interrupted");
}

#[test]
fn tty_without_interactive_input_device_is_refused() {
    let root = root_with("ttynotty", BUSYBOX);
    let out = root
        .berth(&["run", "-it", "--rm", BUSYBOX, "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("the input device is not a TTY"),
        "{}",
        describe(&out)
    );
    assert_no_containers(&root);
}

// ---------------------------------------------------------------------------------------
// Isolation and Docker's security defaults.

#[test]
fn non_root_user_has_no_effective_capabilities() {
    let root = root_with("capsuser", BUSYBOX);
    let status = container_status(&root, &["-u", "nobody"]);
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "CapPrm"), "0000000000000000");
    assert_eq!(status_field(&status, "CapBnd"), DEFAULT_CAPS);
}

#[test]
fn multilayer_whiteouts_and_opaque_dirs_applied() {
    let root = root_with("multilayer", MULTILAYER);
    let expected_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/multilayer.expected");
    let expected: Vec<String> = std::fs::read_to_string(expected_file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            // PATH TYPE MODE UID:GID [-> TARGET] → PATH TYPE MODE UID:GID (mode w/o zeros).
            let w: Vec<&str> = l.split_whitespace().collect();
            let mode = u32::from_str_radix(w[2], 8).unwrap();
            format!("{} {} {:o} {}", w[0], w[1], mode, w[3])
        })
        .collect();
    let out = run_ok(
        &root,
        &[
            MULTILAYER,
            "sh",
            "-c",
            "find /ml -exec stat -c '%n|%F|%a|%u:%g' {} +; \
             echo; cat /ml/opq-last/keep-name.txt /ml/dir-to-file /ml/keep/file.txt",
        ],
    );
    let (listing, contents) = out.split_once("\n\n").expect("listing then contents");
    let mut actual: Vec<String> = listing
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split('|').collect();
            let kind = match w[1] {
                "regular file" | "regular empty file" => "f",
                "directory" => "d",
                "symbolic link" => "l",
                "fifo" => "p",
                other => panic!("unexpected type {other} in {l}"),
            };
            let mode = if kind == "l" { "777" } else { w[2] };
            format!("{} {} {} {}", w[0], kind, mode, w[3])
        })
        .collect();
    actual.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(actual, expected);
    assert_eq!(contents, "new content\nnow a file\nkeep v2\n");
}

// ---------------------------------------------------------------------------------------
// Flags.

#[test]
fn env_and_env_file() {
    let root = root_with("env", BUSYBOX);
    let file = root.dir.join("env.list");
    std::fs::write(
        &file,
        "# a comment\nFROM_FILE=file value\n\nOVERRIDDEN=from-file\n",
    )
    .unwrap();
    let out = root
        .berth(&[
            "run",
            "--rm",
            "--env-file",
            file.to_str().unwrap(),
            "-e",
            "A=1",
            "-e",
            "OVERRIDDEN=from-flag",
            "-e",
            "PASSED_THROUGH",
            "-e",
            "NOT_SET_ON_HOST",
            BUSYBOX,
            "env",
        ])
        .env("PASSED_THROUGH", "from host")
        .env_remove("NOT_SET_ON_HOST")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let env: BTreeSet<String> = text(&out.stdout).lines().map(str::to_string).collect();
    for want in [
        "A=1",
        "FROM_FILE=file value",
        "OVERRIDDEN=from-flag",
        "PASSED_THROUGH=from host",
        "HOME=/root",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(env.contains(want), "{want} missing from {env:#?}");
    }
    assert!(!env.iter().any(|e| e.starts_with("NOT_SET_ON_HOST")));
    assert!(!env.iter().any(|e| e == "OVERRIDDEN=from-file"));
    let hostname = env
        .iter()
        .find_map(|e| e.strip_prefix("HOSTNAME="))
        .unwrap();
    assert!(is_hex(hostname, 12), "{hostname}");
}

#[test]
fn workdir() {
    let root = root_with("workdir", BUSYBOX);
    assert_eq!(run_ok(&root, &["-w", "/tmp", BUSYBOX, "pwd"]), "/tmp\n");
    assert_eq!(
        run_ok(&root, &["--workdir", "/etc", BUSYBOX, "pwd"]),
        "/etc\n"
    );
}

#[test]
fn workdir_that_is_a_file_fails_125() {
    // Docker: "Error response from daemon: Cannot mkdir: /etc/passwd is not a directory", 125.
    let root = root_with("workdirfile", BUSYBOX);
    let err = root.fails(&["run", "--rm", "-w", "/etc/passwd", BUSYBOX, "pwd"], 125);
    assert!(err.contains("/etc/passwd"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_no_containers(&root);
    // Without --rm the container that could not start stays, as in Docker (Created).
}

#[test]
fn workdir_missing_is_created() {
    let root = root_with("workdirnew", BUSYBOX);
    assert_eq!(
        run_ok(&root, &["-w", "/new/sub", BUSYBOX, "pwd"]),
        "/new/sub\n"
    );
}

#[test]
fn user_nobody_and_numeric() {
    let root = root_with("user", BUSYBOX);
    assert_eq!(
        run_ok(&root, &["-u", "nobody", BUSYBOX, "id"]),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
    assert_eq!(
        run_ok(&root, &["-u", "1000:1000", BUSYBOX, "id"]),
        "uid=1000 gid=1000 groups=1000\n"
    );
    assert_eq!(
        sh_ok(&root, &["--user", "65534"], "id -u; echo $HOME"),
        "65534\n/nonexistent\n"
    );
}

#[test]
fn unknown_user_fails_125() {
    // Docker: "unable to find user nosuchuser: no matching entries in passwd file", 125.
    let root = root_with("nouser", BUSYBOX);
    let err = root.fails(&["run", "--rm", "-u", "nosuchuser", BUSYBOX, "id"], 125);
    assert!(
        err.contains("unable to find user nosuchuser: no matching entries in passwd file"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_no_containers(&root);
    // `create` as well leaves nothing.
    root.fails(&["create", "-u", "nosuchuser", BUSYBOX, "id"], 125);
    assert_no_containers(&root);
}

#[test]
fn entrypoint() {
    let root = root_with("entrypoint", BUSYBOX);
    assert_eq!(
        run_ok(&root, &["--entrypoint", "echo", BUSYBOX, "hello", "world"]),
        "hello world\n"
    );
    // --entrypoint drops the image's CMD: `echo` alone prints an empty line.
    assert_eq!(run_ok(&root, &["--entrypoint", "echo", BUSYBOX]), "\n");
}

#[test]
fn empty_entrypoint_and_no_command_fails_125() {
    let root = root_with("nocmd", BUSYBOX);
    let err = root.fails(&["run", "--rm", "--entrypoint", "", BUSYBOX], 125);
    assert!(err.contains("No command specified"), "{err}");
    assert_no_containers(&root);
    let err = root.fails(&["create", "--entrypoint=", BUSYBOX], 125);
    assert!(err.contains("No command specified"), "{err}");
    assert_no_containers(&root);
}

#[test]
fn bind_mount_read_write_and_read_only() {
    let root = root_with("bind", BUSYBOX);
    let host = root.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host data\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let out = run_ok(
        &root,
        &[
            "-v",
            &rw,
            BUSYBOX,
            "sh",
            "-c",
            "cat /data/from-host; echo inside > /data/from-container",
        ],
    );
    assert_eq!(out, "host data\n");
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "inside\n"
    );

    let ro = format!("{}:/data:ro", host.display());
    let out = run_out(
        &root,
        &[
            "-v",
            &ro,
            BUSYBOX,
            "sh",
            "-c",
            "cat /data/from-host; echo again > /data/from-container",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "host data\n");
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "inside\n"
    );
}

#[test]
fn named_volume_persists_across_containers() {
    let root = root_with("namedvol", BUSYBOX);
    sh_ok(&root, &["-v", "myvol:/data"], "echo kept > /data/f");
    let data = root.path.join("volumes/myvol/_data");
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "kept\n");
    assert_eq!(
        run_ok(&root, &["-v", "myvol:/data", BUSYBOX, "cat", "/data/f"]),
        "kept\n"
    );
    // Read-only named volume.
    let out = run_out(
        &root,
        &["-v", "myvol:/data:ro", BUSYBOX, "touch", "/data/g"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!data.join("g").exists());
}

#[test]
fn bad_volumes_fail_125_and_leave_nothing() {
    let root = root_with("badvol", BUSYBOX);
    for spec in [
        "./relative:/x",
        "rel/dir:/x",
        "/missing/host/path:/x",
        "/tmp:relative",
    ] {
        let err = root.fails(&["run", "--rm", "-v", spec, BUSYBOX, "true"], 125);
        assert_eq!(err.trim().lines().count(), 1, "{spec}: one line: {err}");
        let err = root.fails(&["create", "-v", spec, BUSYBOX, "true"], 125);
        assert!(!err.is_empty());
        assert_no_containers(&root);
    }
    assert!(!Path::new("/missing/host/path").exists());
}

#[test]
fn read_only_root() {
    let root = root_with("readonly", BUSYBOX);
    for path in ["/x", "/tmp/x"] {
        let out = run_out(&root, &["--read-only", BUSYBOX, "touch", path]);
        assert_eq!(out.status.code(), Some(1), "{path}: {}", describe(&out));
        assert!(
            text(&out.stderr).contains("Read-only file system"),
            "{}",
            describe(&out)
        );
    }
    assert_eq!(
        sh_ok(
            &root,
            &["--read-only", "--tmpfs", "/tmp"],
            "touch /tmp/x && echo ok"
        ),
        "ok\n"
    );
}

#[test]
fn tmpfs_mount() {
    let root = root_with("tmpfs", BUSYBOX);
    let out = sh_ok(
        &root,
        &["--tmpfs", "/scratch"],
        "echo a > /scratch/f && cat /scratch/f && grep ' /scratch ' /proc/mounts",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("a"));
    let mount = lines.next().expect("a /scratch mount");
    assert!(mount.starts_with("tmpfs /scratch tmpfs "), "{mount}");
}

#[test]
fn memory_limit_kills_with_137() {
    let root = root_with("memory", BUSYBOX);
    // The container's own cgroup is its /sys/fs/cgroup (v2), or that of each hierarchy (v1).
    let limit_file = if berth::runtime::cgroups::is_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let start = Instant::now();
    // tail keeps everything after the last newline: 200 MB of zeros in memory.
    let out = run_out(
        &root,
        &[
            "-m",
            "64m",
            BUSYBOX,
            "sh",
            "-c",
            &format!("cat {limit_file}; head -c 200m /dev/zero | tail"),
        ],
    );
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    assert_eq!(text(&out.stdout).lines().next(), Some("67108864"));
    assert!(start.elapsed() < slow(Duration::from_secs(30)));
    // Without a limit the same fits.
    let out = sh_out(&root, "head -c 100m /dev/zero | tail | wc -c");
    assert_eq!(text(&out.stdout), "104857600\n", "{}", describe(&out));
}

/// berth inside a container, as a CI job runs it (Docker-in-Docker style): a privileged
/// container with berth in it runs a container of its own, with a memory limit, so that the
/// inner berth has to enable controllers below its cgroup namespace's root. On v2 that root
/// holds the outer container's processes, which refuses it (EBUSY) until they are moved into a
/// child cgroup.
#[test]
fn berth_runs_a_container_inside_a_container() {
    let root = root_with("nested", DEBIAN);
    let inner = root.dir.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let berth = format!("{}:/usr/local/bin/berth:ro", env!("CARGO_BIN_EXE_berth"));
    let store = format!("{}:/store", inner.display());
    let script = "berth --root /store run --rm --network none -m 64m 127.0.0.1:5000/busybox:latest \
         sh -c 'echo nested; cat /sys/fs/cgroup/memory.max 2>/dev/null || \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes'";
    let out = run_out(
        &root,
        &[
            "--privileged",
            "--network",
            "host",
            "-v",
            &berth,
            "-v",
            &store,
            DEBIAN,
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stdout).ends_with("nested\n67108864\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn memory_limit_kills_pid1_with_137() {
    let root = root_with("memory1", BUSYBOX);
    // PID 1 itself (tail, exec'd by sh) is the one killed.
    let out = run_out(
        &root,
        &["-m", "32m", BUSYBOX, "sh", "-c", "exec tail < /dev/zero"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
}

/// `State.OOMKilled` is the memory cgroup's `oom_kill` counter (memory.oom_control on v1,
/// memory.events on v2), read by the monitor before the cgroup goes; not a guess from 137.
#[test]
fn oom_killed_is_measured_from_the_cgroup() {
    let root = root_with("oomkilled", BUSYBOX);
    let inspect = |name: &str| {
        root.ok(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            name,
        ])
    };
    // PID 1 killed by the OOM killer; the second start finds its marker and exits 0, and
    // the flag is reset as Docker resets it at every start.
    let out = root.run(&[
        "run",
        "--name",
        "oom",
        "-m",
        "6m",
        BUSYBOX,
        "sh",
        "-c",
        "test -f /done && exit 0; touch /done; exec tail < /dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    assert_eq!(inspect("oom"), "true 137\n");
    root.ok(&["start", "-a", "oom"]);
    assert_eq!(inspect("oom"), "false 0\n");
    // A child killed while the container goes on to exit 0: still OOMKilled, as in Docker.
    let out = root.run(&[
        "run",
        "--name",
        "child",
        "-m",
        "6m",
        BUSYBOX,
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail; exit 0",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(inspect("child"), "true 0\n");
    // A normal exit, and a SIGKILL that is not the OOM killer's: false.
    root.ok(&["run", "--name", "fine", "-m", "6m", BUSYBOX, "true"]);
    assert_eq!(inspect("fine"), "false 0\n");
    root.ok(&[
        "run", "-d", "--name", "killed", "-m", "6m", BUSYBOX, "sleep", "100",
    ]);
    root.ok(&["kill", "killed"]);
    assert_eq!(root.ok(&["wait", "killed"]), "137\n");
    assert_eq!(inspect("killed"), "false 137\n");
}

/// `-1` values (unlimited) are values, not flags: `--memory-swap -1`, `--pids-limit -1`.
#[test]
fn minus_one_means_unlimited() {
    let root = root_with("minusone", BUSYBOX);
    let (swap, pids) = if cgroup_v2() {
        ("/sys/fs/cgroup/memory.swap.max", "/sys/fs/cgroup/pids.max")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
            "/sys/fs/cgroup/pids/pids.max",
        )
    };
    let out = sh_ok(
        &root,
        &["-m", "16m", "--memory-swap", "-1", "--pids-limit", "-1"],
        &format!("cat {pids}; cat {swap} 2>/dev/null || echo no-swap-accounting"),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("max"), "{out}");
    let swap = lines.next().unwrap();
    assert!(
        ["max", "9223372036854771712", "no-swap-accounting"].contains(&swap),
        "{out}"
    );
}

/// True on a host with the unified (v2-only) cgroup layout.
fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `--device HOST:CONTAINER:PERMS`: a node with the host's type and numbers at the
/// container path, and a device-cgroup rule with exactly those permissions. /dev/kmsg
/// (1:11) is none of the devices every container may open, and opening it write-only needs
/// no capability.
#[test]
fn device_flag_adds_the_host_node_with_its_permissions() {
    let root = root_with("device", BUSYBOX);
    let kmsg_writable = std::fs::read_to_string("/proc/sys/kernel/printk_devkmsg")
        .map_or(true, |v| v.trim() != "off");
    // (`true`, not `:`: a failed redirection of a special builtin ends the shell.)
    let script = "stat -c '%F %t:%T' /dev/k; true > /dev/k && echo opened || echo refused";
    let out = sh_ok(&root, &["--device", "/dev/kmsg:/dev/k:r"], script);
    assert_eq!(out, "character special file 1:b\nrefused\n");
    if kmsg_writable {
        let out = sh_ok(&root, &["--device", "/dev/kmsg:/dev/k:rw"], script);
        assert_eq!(out, "character special file 1:b\nopened\n");
        // HOST alone: same path, rwm.
        let out = sh_ok(
            &root,
            &["--device", "/dev/kmsg"],
            "true > /dev/kmsg && echo opened",
        );
        assert_eq!(out, "opened\n");
    }
    // Without the flag the same numbers are refused, even on a node made inside.
    let out = sh_ok(
        &root,
        &[],
        "test -e /dev/kmsg && echo present; mknod /tmp/k c 1 11; true > /tmp/k || echo refused",
    );
    assert_eq!(out, "refused\n");

    // inspect shows the mapping as Docker's HostConfig.Devices.
    root.ok(&[
        "create",
        "--name",
        "dev",
        "--device",
        "/dev/kmsg:/dev/k:r",
        BUSYBOX,
        "true",
    ]);
    let devices = root.ok(&["inspect", "-f", "{{json .HostConfig.Devices}}", "dev"]);
    assert_eq!(
        devices,
        "[{\"CgroupPermissions\":\"r\",\"PathInContainer\":\"/dev/k\",\"PathOnHost\":\"/dev/kmsg\"}]\n"
    );

    // Docker's errors: a missing device exits 127 (its client reads "no such file or
    // directory" as a missing command), a file that is no device 125, a bad value 125.
    let err = root.fails(
        &[
            "run",
            "--rm",
            "--device",
            "/dev/berth-nonexistent",
            BUSYBOX,
            "true",
        ],
        127,
    );
    assert_eq!(
        err,
        "berth: Error response from daemon: error gathering device information while adding custom device \"/dev/berth-nonexistent\": no such file or directory\n"
    );
    let err = root.fails(
        &["run", "--rm", "--device", "/etc/hostname", BUSYBOX, "true"],
        125,
    );
    assert!(err.ends_with(": not a device node\n"), "{err}");
    let err = root.fails(
        &[
            "run",
            "--rm",
            "--device",
            "/dev/kmsg:/dev/k:rwx",
            BUSYBOX,
            "true",
        ],
        125,
    );
    assert_eq!(err, "berth: bad mode specified: rwx\n");
    let err = root.fails(
        &["run", "--rm", "--device", "/dev/kmsg:k", BUSYBOX, "true"],
        125,
    );
    assert_eq!(err, "berth: k is not an absolute path\n");
}

/// `--privileged` gets every device node of the host's /dev (as Docker: not the pty,
/// shm, fd or mqueue directories, not the console, and /dev/ptmx stays the link into the
/// container's own devpts), with the host's numbers.
#[test]
fn privileged_containers_see_the_hosts_devices() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let root = root_with("privdev", BUSYBOX);
    let mut host = BTreeSet::new();
    for e in std::fs::read_dir("/dev").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().unwrap();
        if (ft.is_char_device() || ft.is_block_device()) && name != "console" && name != "ptmx" {
            let rdev = e.metadata().unwrap().rdev();
            host.insert(format!(
                "{name} {:x}:{:x}",
                libc::major(rdev),
                libc::minor(rdev)
            ));
        }
    }
    let listing = "cd /dev; for f in *; do if [ ! -L $f ] && { [ -c $f ] || [ -b $f ]; }; then stat -c '%n %t:%T' $f; fi; done; readlink /dev/ptmx";
    let out = sh_ok(&root, &["--privileged"], listing);
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.pop(), Some("pts/ptmx"), "{out}");
    let inside: BTreeSet<String> = lines.iter().map(|l| l.to_string()).collect();
    let missing: Vec<_> = host.difference(&inside).collect();
    assert!(
        missing.is_empty(),
        "host devices missing: {missing:?}\n{out}"
    );
    // Unprivileged: the standard nodes only.
    let out = sh_ok(&root, &[], listing);
    let names: BTreeSet<&str> = out.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        names,
        [
            "full", "null", "pts/ptmx", "random", "tty", "urandom", "zero"
        ]
        .into_iter()
        .collect(),
        "{out}"
    );
}

/// `--cgroupns`: Docker's default is private on cgroup v2 and host on v1. Without a
/// namespace of its own the container sees its cgroup's full path in /proc/self/cgroup, and
/// /sys/fs/cgroup still shows its own cgroup's files (bind-mounted, as runc does), never the
/// host's tree.
#[test]
fn cgroupns_host_and_private() {
    let root = root_with("cgroupns", BUSYBOX);
    let (line, limit) = if cgroup_v2() {
        ("cat /proc/self/cgroup", "cat /sys/fs/cgroup/memory.max")
    } else {
        (
            "grep :memory: /proc/self/cgroup",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    };
    let script = format!(
        "{line}; {limit}; ls /sys/fs/cgroup/{} | grep -c berth || true",
        if cgroup_v2() { "" } else { "memory" }
    );
    let run = |mode: Option<&str>| {
        let mut args = vec!["run", "-d", "-m", "16m"];
        if let Some(m) = mode {
            args.extend(["--cgroupns", m]);
        }
        args.extend([BUSYBOX, "sh", "-c", &script]);
        let id = root.ok(&args).trim().to_string();
        assert_eq!(root.ok(&["wait", &id]), "0\n");
        let out = root.ok(&["logs", &id]);
        let mode = root.ok(&["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", &id]);
        (id, out, mode)
    };
    let default_mode = if cgroup_v2() { "private" } else { "host" };
    for mode in [None, Some("host"), Some("private")] {
        let (id, out, shown) = run(mode);
        let mode = mode.unwrap_or(default_mode);
        assert_eq!(shown, format!("{mode}\n"));
        let mut lines = out.lines();
        let cgroup = lines.next().unwrap();
        if mode == "host" {
            // `/berth/<id>`, or the systemd driver's scope `…/berth-<id>.scope`.
            assert!(
                cgroup.ends_with(&id) || cgroup.ends_with(&format!("/berth-{id}.scope")),
                "{out}"
            );
        } else {
            assert!(cgroup.ends_with(":/"), "{out}");
        }
        assert_eq!(lines.next(), Some("16777216"), "{out}");
        // The container's own cgroup as the root: no berth directory under it.
        assert_eq!(lines.next(), Some("0"), "{out}");
    }
    let err = root.fails(&["run", "--rm", "--cgroupns", "foo", BUSYBOX, "true"], 125);
    assert_eq!(err, "berth: --cgroupns: invalid CGROUP mode\n");
}

/// `--cpu-shares`, `--cpuset-cpus`, `--cpuset-mems` reach the container's cgroup (v2: the
/// shares as cpu.weight with runc's conversion), and inspect shows them; values the host
/// cannot take are refused with Docker's words.
#[test]
fn cpu_shares_and_cpuset() {
    let root = root_with("cpushares", BUSYBOX);
    let script = if cgroup_v2() {
        "cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/cpuset.mems; grep Cpus_allowed_list /proc/self/status"
    } else {
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems; grep Cpus_allowed_list /proc/self/status"
    };
    let out = sh_ok(
        &root,
        &["-c", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0"],
        script,
    );
    let shares = if cgroup_v2() { "20" } else { "512" };
    assert_eq!(out, format!("{shares}\n0\n0\nCpus_allowed_list:\t0\n"));
    root.ok(&[
        "create",
        "--name",
        "cpu",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        BUSYBOX,
        "true",
    ]);
    assert_eq!(
        root.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}}",
            "cpu"
        ]),
        "512 0 0\n"
    );

    // The host's cpus, as Docker reports them.
    let cpus = if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cpuset.cpus.effective").unwrap()
    } else {
        std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.cpus").unwrap()
    };
    let err = root.fails(
        &["run", "--rm", "--cpuset-cpus", "4096", BUSYBOX, "true"],
        125,
    );
    assert_eq!(
        err,
        format!(
            "berth: Error response from daemon: Requested CPUs are not available - requested 4096, available: {}\n",
            cpus.trim()
        )
    );
    let err = root.fails(&["run", "--rm", "--cpuset-mems", "x", BUSYBOX, "true"], 125);
    assert_eq!(
        err,
        "berth: Error response from daemon: Invalid value x for cpuset mems: invalid format: x\n"
    );
    let err = root.fails(&["run", "--rm", "-c", "1", BUSYBOX, "true"], 125);
    assert!(err.contains("the minimum allowed cpu-shares is 2"), "{err}");
    let err = root.fails(&["run", "--rm", "-c", "-5", BUSYBOX, "true"], 125);
    assert_eq!(
        err,
        "berth: Error response from daemon: shares: invalid argument\n"
    );
}

/// `--blkio-weight`: where the host has a weight (v1 blkio.weight or blkio.bfq.weight, v2
/// the io controller) it is applied and checked against 10–1000; where it has none, Docker
/// discards it with a warning, and so does berth.
#[test]
fn blkio_weight_is_applied_or_discarded_as_docker_does() {
    let root = root_with("blkio", BUSYBOX);
    let supported = if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap()
            .split_whitespace()
            .any(|c| c == "io")
    } else {
        Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
            || Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight").exists()
    };
    let out = root.run(&["run", "--rm", "--blkio-weight", "300", BUSYBOX, "sh", "-c",
        "cat /sys/fs/cgroup/blkio/blkio.weight /sys/fs/cgroup/blkio/blkio.bfq.weight /sys/fs/cgroup/io.bfq.weight /sys/fs/cgroup/io.weight 2>/dev/null; true"]);
    assert!(out.status.success(), "{}", describe(&out));
    let inspect_weight = |flag: &str| {
        let name = format!("w{flag}");
        root.ok(&[
            "create",
            "--name",
            &name,
            "--blkio-weight",
            flag,
            BUSYBOX,
            "true",
        ]);
        root.ok(&["inspect", "-f", "{{.HostConfig.BlkioWeight}}", &name])
    };
    if supported {
        let values = text(&out.stdout);
        // v1 and BFQ keep the value; v2's io.weight gets runc's conversion (2930).
        assert!(
            values.lines().any(|l| l == "300" || l == "default 2930"),
            "{values}"
        );
        assert_eq!(inspect_weight("300"), "300\n");
        let err = root.fails(
            &["run", "--rm", "--blkio-weight", "5", BUSYBOX, "true"],
            125,
        );
        assert_eq!(
            err,
            "berth: Error response from daemon: Range of blkio weight is from 10 to 1000\n"
        );
    } else {
        assert_eq!(
            text(&out.stderr),
            "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.\n"
        );
        assert_eq!(inspect_weight("300"), "0\n");
    }
    let err = root.fails(
        &["run", "--rm", "--blkio-weight", "abc", BUSYBOX, "true"],
        125,
    );
    assert!(
        err.starts_with("invalid argument \"abc\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"abc\": invalid syntax"),
        "{err}"
    );
}

#[test]
fn pids_limit_contains_fork_bomb() {
    let root = root_with("pids", BUSYBOX);
    let start = Instant::now();
    let out = run_out(
        &root,
        &[
            "--pids-limit",
            "20",
            BUSYBOX,
            "sh",
            "-c",
            // busybox sh gives up at the first failed fork: do it in a subshell, then count
            // (with shell builtins only: no fork is left for the counting).
            "(for i in $(seq 100); do sleep 10 & done); \
             set -- /proc/[0-9]*; echo procs=$#; echo done",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "{}",
        describe(&out)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with("done\n"), "{}", describe(&out));
    let procs: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs <= 20, "{procs} processes with --pids-limit 20");
    assert!(
        text(&out.stderr).contains("can't fork"),
        "{}",
        describe(&out)
    );
    // The host still forks.
    assert!(Command::new("true").status().unwrap().success());
}

#[test]
fn init_shows_as_berth_init_not_the_host_command_line() {
    let root = root_with("inittitle", BUSYBOX);
    let out = sh_ok(
        &root,
        &["--init"],
        "cat /proc/1/comm; tr '\\0' ' ' </proc/1/cmdline",
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("berth-init"), "{out}");
    let cmdline = lines.next().unwrap_or_default().trim_end();
    // As Docker's `/sbin/docker-init -- CMD`; nothing of the host's berth invocation (the
    // store path, the flags) is visible in the container.
    assert!(
        cmdline.starts_with("berth-init -- sh -c cat /proc/1/comm"),
        "{out}"
    );
    let store = root.path.to_str().unwrap();
    assert!(
        !cmdline.contains(store) && !cmdline.contains("--init"),
        "{out}"
    );
}

/// Waits until the container whose only directory is in `root` is running; its host pid.
fn running_pid(root: &TestRoot, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(id) = container_dirs(root).first()
            && let Ok(bytes) =
                std::fs::read(root.path.join("containers").join(id).join("state.json"))
            && let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && state["status"] == "running"
        {
            return state["pid"].as_i64().unwrap() as i32;
        }
        assert!(Instant::now() < deadline, "container did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until process `pid` catches SIGTERM (berth's sig-proxy is installed only once the
/// container runs).
fn wait_catches_sigterm(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (libc::SIGTERM - 1)) != 0 {
            return;
        }
        assert!(Instant::now() < deadline, "berth never caught SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_with_and_without_init() {
    let root = root_with("signals", BUSYBOX);
    let _reaper = Reaper(&root);
    // Without --init, `sleep` is PID 1 and has no handler: SIGTERM (proxied by berth) is
    // ignored by the kernel for a namespace's init; SIGKILL from the host ends it: 137.
    let mut child = root
        .berth(&["run", "--rm", BUSYBOX, "sleep", "30"])
        .spawn()
        .unwrap();
    let pid = running_pid(&root, Duration::from_secs(10));
    wait_catches_sigterm(child.id());
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "PID 1 ignores SIGTERM");
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(wait_code(&mut child, Duration::from_secs(10)), 137);
    assert_no_containers(&root);

    // With --init, berth's init forwards the proxied SIGTERM to sleep: 128+15.
    let mut child = root
        .berth(&["run", "--rm", "--init", BUSYBOX, "sleep", "30"])
        .spawn()
        .unwrap();
    running_pid(&root, Duration::from_secs(10));
    wait_catches_sigterm(child.id());
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_code(&mut child, Duration::from_secs(10)), 143);
    assert_no_containers(&root);
}

fn wait_code(child: &mut std::process::Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("berth exits normally");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cap_drop_add_and_privileged() {
    let root = root_with("capflags", BUSYBOX);
    let status = container_status(&root, &["--cap-drop", "ALL"]);
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&status, "CapBnd"), "0000000000000000");

    let status = container_status(&root, &["--cap-add", "SYS_ADMIN"]);
    let eff = u64::from_str_radix(status_field(&status, "CapEff"), 16).unwrap();
    assert_eq!(eff, 0xa80425fb | (1 << 21), "{status}");

    let status = container_status(
        &root,
        &["--cap-drop", "chown", "--cap-add", "cap_net_admin"],
    );
    let eff = u64::from_str_radix(status_field(&status, "CapEff"), 16).unwrap();
    assert_eq!(eff, (0xa80425fb & !1) | (1 << 12));

    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let status = container_status(&root, &["--privileged"]);
    assert_eq!(
        status_field(&status, "CapEff"),
        status_field(&host, "CapBnd")
    );
    assert_eq!(status_field(&status, "Seccomp"), "0");

    let err = root.fails(
        &["run", "--rm", "--cap-add", "NOT_A_CAP", BUSYBOX, "true"],
        125,
    );
    assert!(err.contains("NOT_A_CAP"), "{err}");
}

#[test]
fn security_opts() {
    let root = root_with("secopt", BUSYBOX);
    let status = container_status(&root, &["--security-opt", "no-new-privileges"]);
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    let status = container_status(&root, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status_field(&status, "Seccomp"), "0");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
    root.fails(
        &["run", "--rm", "--security-opt", "bogus", BUSYBOX, "true"],
        125,
    );
}

#[test]
fn ulimit() {
    let root = root_with("ulimit", BUSYBOX);
    assert_eq!(
        sh_ok(
            &root,
            &["--ulimit", "nofile=1024:2048"],
            "ulimit -n; ulimit -Hn"
        ),
        "1024\n2048\n"
    );
    root.fails(
        &["run", "--rm", "--ulimit", "nofile=2:1", BUSYBOX, "true"],
        125,
    );
}

/// A `--ulimit` above what berth can grant is clamped with a warning (issue 22): berth lacks
/// CAP_SYS_RESOURCE here when its bounding set does, and then no hard limit can go past its own.
#[test]
fn ulimit_above_the_hosts_limit_is_clamped_with_a_warning() {
    let root = root_with("ulimit-clamp", BUSYBOX);
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) }, 0);
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap();
    // Above our hard limit, within what the kernel allows anyone (fs.nr_open).
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let wanted = (own.rlim_max + 1).min(nr_open);
    if wanted <= own.rlim_max {
        eprintln!("skipped: the hard NOFILE limit is already the kernel's maximum");
        return;
    }
    let flag = format!("nofile={wanted}");
    let out = run_out(
        &root,
        &["--ulimit", &flag, BUSYBOX, "sh", "-c", "ulimit -Hn"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    if can_raise {
        assert_eq!(stdout.trim(), wanted.to_string());
        assert!(!stderr.contains("WARNING"), "{stderr}");
    } else {
        assert_eq!(stdout.trim(), own.rlim_max.to_string());
        assert_eq!(
            stderr.trim(),
            format!(
                "WARNING: cannot raise hard rlimits without CAP_SYS_RESOURCE, clamped to the \
                 host's limit: nofile {wanted} > {}",
                own.rlim_max
            )
        );
    }
    // Within the limit: no warning.
    let out = run_out(&root, &["--ulimit", "nofile=100:200", BUSYBOX, "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!text(&out.stderr).contains("WARNING"), "{}", describe(&out));
    assert_no_containers(&root);
}

/// `-1` is the documented "unlimited" of `--pids-limit` and `--memory-swap`: taken as a value,
/// not as a flag (issue 22). `0` is Docker's "unlimited" for `--cpus`, `-m` and the pids limit.
#[test]
fn unlimited_values_are_taken() {
    let root = root_with("unlimited", BUSYBOX);
    for flags in [
        &["--pids-limit", "-1"][..],
        &["--pids-limit=-1"],
        &["--pids-limit", "0"],
        &["-m", "10m", "--memory-swap", "-1"],
        &["--memory-swap", "-1"],
        &["--cpus", "0"],
        &["--cpus=-0"],
        &["-m", "0"],
        &["-m", "0", "--memory-swap", "0"],
    ] {
        let mut args = flags.to_vec();
        args.extend_from_slice(&[BUSYBOX, "echo", "ran"]);
        let out = run_out(&root, &args);
        assert_eq!(
            (out.status.code(), text(&out.stdout).as_str()),
            (Some(0), "ran\n"),
            "{flags:?}: {}",
            describe(&out)
        );
    }
    // A value the flag cannot take is Docker's flag error, not "unknown flag".
    let err = root.fails(&["run", "--rm", "-m", "-1", BUSYBOX, "true"], 125);
    assert!(
        err.starts_with("invalid argument \"-1\" for \"-m, --memory\" flag: invalid size: '-1'"),
        "{err}"
    );
    let err = root.fails(
        &[
            "run",
            "--rm",
            "-m",
            "10m",
            "--memory-swap",
            "-2",
            BUSYBOX,
            "true",
        ],
        125,
    );
    assert!(
        err.starts_with("invalid argument \"-2\" for \"--memory-swap\" flag: invalid size: '-2'"),
        "{err}"
    );
    assert_no_containers(&root);
}

/// The limits Docker's daemon refuses, in its words (checked against dockerd 20.10 and
/// Docker 28's client): exit 125 with `berth: Error response from daemon: …` for `run`, exit 1
/// with `Error response from daemon: …` for `create`; before any image is looked for or
/// pulled, and leaving no container.
#[test]
fn limits_out_of_range_are_refused_as_docker_refuses_them() {
    let root = root_with("limits", BUSYBOX);
    let range_prefix = "Range of CPUs is from 0.01 to ";
    let cases: [(&[&str], &str); 6] = [
        (&["-m", "1k"], "Minimum memory limit allowed is 6MB"),
        (&["-m", "6291455"], "Minimum memory limit allowed is 6MB"),
        (
            &["-m", "10m", "--memory-swap", "5m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            &["--memory-swap", "10m"],
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (&["--cpus", "1000"], range_prefix),
        (&["--cpus", "-1"], range_prefix),
    ];
    for (flags, words) in cases {
        // The image does not exist: the limits are checked first, so nothing is pulled.
        for image in [BUSYBOX, "127.0.0.1:5000/no-such-image:latest"] {
            let mut args = vec!["run", "--rm"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[image, "true"]);
            let err = root.fails(&args, 125);
            let expected = format!("berth: Error response from daemon: {words}");
            assert!(err.starts_with(&expected), "{flags:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");

            let mut args = vec!["create"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&[image, "true"]);
            let err = root.fails(&args, 1);
            let expected = format!("Error response from daemon: {words}");
            assert!(err.starts_with(&expected), "{flags:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{flags:?}: {err}");
        }
    }
    // The CPUs berth may run on are the most there is (Docker counts the affinity mask, as
    // nproc does).
    let err = root.fails(&["run", "--rm", "--cpus", "1000", BUSYBOX, "true"], 125);
    let affinity = String::from_utf8(Command::new("nproc").output().unwrap().stdout).unwrap();
    let n = affinity.trim();
    assert!(
        err.contains(&format!(
            "{range_prefix}{n}.00, as there are only {n} CPUs available"
        )),
        "{err}"
    );
    run_ok(&root, &["--cpus", n, BUSYBOX, "true"]);
    // Client-side words for what cannot be read as a number of CPUs.
    let err = root.fails(&["run", "--rm", "--cpus", "lots", BUSYBOX, "true"], 125);
    assert!(
        err.starts_with("invalid argument \"lots\" for \"--cpus\" flag: failed to parse lots as a rational number"),
        "{err}"
    );
    let err = root.fails(&["run", "--rm", "--cpus", "1/3", BUSYBOX, "true"], 125);
    assert!(
        err.starts_with("invalid argument \"1/3\" for \"--cpus\" flag: value is too precise"),
        "{err}"
    );
    run_ok(&root, &["--cpus", "1/2", "-m", "6m", BUSYBOX, "true"]);
    assert_no_containers(&root);
}

#[test]
fn hostname_flag() {
    let root = root_with("hostname", BUSYBOX);
    assert_eq!(
        sh_ok(
            &root,
            &["--hostname", "foo"],
            "hostname; cat /etc/hostname; echo $HOSTNAME"
        ),
        "foo\nfoo\nfoo\n"
    );
    assert_eq!(run_ok(&root, &["-h", "bar", BUSYBOX, "hostname"]), "bar\n");
}

/// Interface names, but those other tests add and remove meanwhile: bridged containers'
/// veths, the bridge itself on a fresh host, tests/network.rs's `bt-` pair.
fn without_veths<S: AsRef<str>>(names: impl Iterator<Item = S>) -> BTreeSet<String> {
    names
        .map(|n| n.as_ref().to_string())
        .filter(|n| !n.starts_with("veth") && n != "berth0" && !n.starts_with("bt-"))
        .collect()
}

fn host_interfaces() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn network_none_and_host() {
    let root = root_with("network", BUSYBOX);
    let none = run_ok(
        &root,
        &["--network", "none", BUSYBOX, "ls", "/sys/class/net"],
    );
    assert_eq!(none.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // The default network is the bridge: eth0 beside lo.
    let bridged = run_ok(&root, &[BUSYBOX, "ls", "/sys/class/net"]);
    assert_eq!(
        bridged.split_whitespace().collect::<Vec<_>>(),
        ["eth0", "lo"]
    );

    let out = sh_ok(&root, &["--network", "host"], "hostname; ls /sys/class/net");
    let mut lines = out.lines();
    let host_name = nix::unistd::gethostname().unwrap();
    assert_eq!(lines.next().unwrap(), host_name.to_string_lossy());
    let inside = without_veths(lines.flat_map(|l| l.split_whitespace()));
    assert_eq!(inside, without_veths(host_interfaces().iter()));

    root.fails(
        &["run", "--rm", "--network", "nosuchnet", BUSYBOX, "true"],
        125,
    );
}

/// `start` makes each container's network namespace in the CLI (see
/// `lifecycle::send_network_namespace`) and must come back to its own each time: a second
/// container started by the same command gets the host's network, or one of its own, never
/// the first one's.
#[test]
fn one_start_of_containers_with_different_networks() {
    let root = root_with("startnets", BUSYBOX);
    for (name, network) in [("n1", "none"), ("h1", "host"), ("n2", "none")] {
        let args = ["create", "--name", name, "--network", network, BUSYBOX];
        root.ok(&[&args[..], &["ls", "/sys/class/net"]].concat());
    }
    assert_eq!(root.ok(&["start", "n1", "h1", "n2"]), "n1\nh1\nn2\n");
    for name in ["n1", "h1", "n2"] {
        root.ok(&["wait", name]);
    }
    let interfaces = |name: &str| without_veths(root.ok(&["logs", name]).split_whitespace());
    let only_lo = BTreeSet::from(["lo".to_string()]);
    assert_eq!(interfaces("n1"), only_lo);
    assert_eq!(interfaces("n2"), only_lo);
    assert_eq!(interfaces("h1"), without_veths(host_interfaces().iter()));
    root.ok(&["rm", "n1", "h1", "n2"]);

    // And the namespace was the CLI's, handed over, not one the clone made after all.
    let trace = root.dir.join("trace");
    let out = root
        .berth(&["run", "--rm", "--network", "none", BUSYBOX, "true"])
        .env("BERTH_TRACE", &trace)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let steps = std::fs::read_to_string(&trace).unwrap();
    assert!(steps.contains(" monitor-netns-received "), "{steps}");
}

#[test]
fn name_conflict_fails_125() {
    let root = root_with("name", BUSYBOX);
    let id = root.ok(&["create", "--name", "web", BUSYBOX, "true"]);
    let id = id.trim();
    let trace = root.dir.join("trace");
    let out = root
        .berth(&["run", "--rm", "--name", "web", BUSYBOX, "true"])
        .env("BERTH_TRACE", &trace)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // `run`'s CLI makes the cgroup while its monitor creates the container: a container
    // that could not be created leaves none behind.
    let steps = std::fs::read_to_string(&trace).unwrap();
    let failed_id = steps
        .lines()
        .find_map(|l| l.split(' ').skip_while(|w| *w != "run-id").nth(1))
        .expect("the run's container ID in the trace");
    let left = cgroup_dirs(failed_id);
    assert!(left.is_empty(), "{left:?} were left behind:\n{steps}");
    assert!(
        err.contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{err}"
    );
    assert_eq!(container_dirs(&root), [id.to_string()]);
    let err = root.fails(&["create", "--name", "bad name", BUSYBOX, "true"], 125);
    assert!(err.contains("Invalid container name"), "{err}");
    assert_eq!(container_dirs(&root), [id.to_string()]);
}

// ---------------------------------------------------------------------------------------
// Exit codes.

#[test]
fn exit_code_0_and_3() {
    let root = root_with("exit03", BUSYBOX);
    assert_eq!(run_out(&root, &[BUSYBOX, "true"]).status.code(), Some(0));
    assert_eq!(sh_out(&root, "exit 3").status.code(), Some(3));
    assert_no_containers(&root);
}

#[test]
fn exit_125_bad_flag_value() {
    let root = root_with("exit125", BUSYBOX);
    let err = root.fails(&["run", "--rm", "--memory", "10x", BUSYBOX, "true"], 125);
    assert!(err.contains("10x"), "{err}");
    root.fails(&["run", "--rm", "--bogus", BUSYBOX, "true"], 125);
    root.fails(&["run", "--rm", "--cpus", "lots", BUSYBOX, "true"], 125);
    assert_no_containers(&root);
}

#[test]
fn exit_125_bad_values_worded_as_docker() {
    let root = root_with("badvalues", BUSYBOX);
    let missing = root.dir.join("no-such.env");
    let missing = missing.to_str().unwrap();
    let no_such_file = format!("open {missing}: no such file or directory");
    // (flag, value, image, Docker's words). The last image does not exist: the value is
    // checked before the image is looked for, as by Docker's client, so nothing is pulled.
    let cases = [
        (
            "--pids-limit",
            "x",
            BUSYBOX,
            "invalid argument \"x\" for \"--pids-limit\" flag: ",
        ),
        (
            "--cap-add",
            "nope",
            BUSYBOX,
            "invalid CapAdd: unknown capability: \"CAP_NOPE\"",
        ),
        (
            "--cap-drop",
            "NOPE",
            BUSYBOX,
            "invalid CapDrop: unknown capability: \"CAP_NOPE\"",
        ),
        (
            "--env-file",
            "/etc",
            BUSYBOX,
            "invalid env file (/etc): read /etc: is a directory",
        ),
        ("--env-file", missing, BUSYBOX, no_such_file.as_str()),
        (
            "--memory",
            "10x",
            "127.0.0.1:5000/nope",
            "for \"-m, --memory\" flag",
        ),
    ];
    for (flag, value, image, words) in cases {
        let err = root.fails(&["run", "--rm", flag, value, image, "true"], 125);
        assert!(err.contains(words), "{flag} {value}: {err}");
        assert!(
            !err.contains("Unable to find image"),
            "{flag} {value}: {err}"
        );
        // Docker's client line, with nothing before it.
        if flag == "--pids-limit" {
            assert!(err.starts_with(words), "{err}");
        }
    }
    assert_no_containers(&root);
}

/// An architecture the fixtures are not built for, whatever the host.
fn foreign_platform() -> &'static str {
    if cfg!(target_arch = "s390x") {
        "linux/riscv64"
    } else {
        "linux/s390x"
    }
}

#[test]
fn platform_must_match_the_image() {
    let root = root_with("platform", BUSYBOX);
    let host = root.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}}",
        BUSYBOX,
    ]);
    let host = host.trim();
    assert_eq!(
        run_ok(&root, &["--platform", host, BUSYBOX, "echo", "ok"]),
        "ok\n"
    );
    // The local image is for another platform: pulling it again cannot help (the fixture
    // registry serves one platform), so the run fails as Docker's does, and leaves nothing.
    let wanted = foreign_platform();
    let mismatch = format!(
        "image with reference {BUSYBOX} was found but does not match the specified platform: \
         wanted {wanted}, actual: {host}"
    );
    let err = root.fails(&["run", "--rm", "--platform", wanted, BUSYBOX, "true"], 125);
    assert!(err.contains("Unable to find image"), "{err}");
    assert!(err.contains(&mismatch), "{err}");
    let err = root.fails(
        &[
            "run",
            "--rm",
            "--pull",
            "never",
            "--platform",
            wanted,
            BUSYBOX,
            "true",
        ],
        125,
    );
    assert!(err.contains(&mismatch), "{err}");
    root.fails(&["create", "--platform", wanted, BUSYBOX, "true"], 125);
    // One word, as containerd reads it: the OS with the host's architecture.
    assert_eq!(
        run_ok(&root, &["--platform", "linux", BUSYBOX, "echo", "ok"]),
        "ok\n"
    );
    let err = root.fails(
        &["run", "--rm", "--platform", "bogus", BUSYBOX, "true"],
        125,
    );
    assert!(err.contains("invalid platform"), "{err}");
    assert_no_containers(&root);
}

#[test]
fn exit_125_unknown_flag_message() {
    let root = root_with("unknownflag", BUSYBOX);
    let err = root.fails(&["run", "--rm", "--bogus", BUSYBOX, "true"], 125);
    assert!(err.contains("unknown flag: --bogus"), "{err}");
}

#[test]
fn exit_125_nonexistent_image() {
    fixtures();
    let root = TestRoot::new("run-noimage");
    let err = root.fails(&["run", "--rm", "127.0.0.1:5000/nope"], 125);
    assert!(
        err.contains("Unable to find image '127.0.0.1:5000/nope:latest' locally"),
        "{err}"
    );
    assert!(err.contains("manifest unknown"), "{err}");
    let err = root.fails(&["run", "--rm", "--pull", "never", BUSYBOX, "true"], 125);
    assert!(err.contains("No such image"), "{err}");
    let err = root.fails(&["run", "--rm", "Not/A:Valid:Ref", "true"], 125);
    assert!(err.contains("invalid reference format"), "{err}");
    assert_no_containers(&root);
}

#[test]
fn exit_126_not_executable() {
    let root = root_with("exit126", BUSYBOX);
    let err = root.fails(&["run", "--rm", BUSYBOX, "/etc/passwd"], 126);
    assert!(
        err.contains("exec: \"/etc/passwd\": permission denied"),
        "{err}"
    );
    // A directory is not executable either.
    root.fails(&["run", "--rm", BUSYBOX, "/etc"], 126);
    assert_no_containers(&root);
}

#[test]
fn exit_127_not_found() {
    let root = root_with("exit127", BUSYBOX);
    let err = root.fails(&["run", "--rm", BUSYBOX, "nope"], 127);
    assert!(
        err.contains("exec: \"nope\": executable file not found in $PATH"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    root.fails(&["run", "--rm", BUSYBOX, "/no/such/file"], 127);
    assert_no_containers(&root);
}

#[test]
fn exit_137_killed() {
    let root = root_with("exit137", BUSYBOX);
    let _reaper = Reaper(&root);
    // A child shell killed by SIGKILL: the container's own status is 137.
    // (`; exit $?`: busybox sh would exec a lone last command, making it PID 1.)
    let out = sh_out(&root, "sh -c 'kill -9 $$'; exit $?");
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    // PID 1 killed by SIGKILL (from outside: PID 1 ignores it from inside, as in Docker).
    let mut child = root
        .berth(&["run", "--rm", BUSYBOX, "sleep", "30"])
        .spawn()
        .unwrap();
    let pid = running_pid(&root, Duration::from_secs(10));
    // SAFETY: kill takes integers only and touches no memory of ours.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(wait_code(&mut child, Duration::from_secs(10)), 137);
    // From inside, as in Docker: `kill -9 $$` in PID 1 does nothing, the shell exits 0.
    let out = sh_out(&root, "kill -9 $$");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_no_containers(&root);
}

// ---------------------------------------------------------------------------------------
// create / start.

fn read_state(root: &TestRoot, id: &str) -> Option<serde_json::Value> {
    let path = root.path.join("containers").join(id).join("state.json");
    std::fs::read(path)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

#[test]
fn create_then_start_attached() {
    let root = root_with("create", BUSYBOX);
    let out = root.ok(&[
        "create",
        BUSYBOX,
        "sh",
        "-c",
        "echo started; echo oops >&2; exit 5",
    ]);
    let id = out.trim().to_string();
    assert!(is_hex(&id, 64), "create prints the ID: {out:?}");
    assert_eq!(container_dirs(&root), std::slice::from_ref(&id));
    if let Some(state) = read_state(&root, &id) {
        assert_eq!(state["status"], "created");
    }

    let out = root.run(&["start", "-a", &id[..12]]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "started\n");
    assert_eq!(text(&out.stderr), "oops\n");
    let state = read_state(&root, &id).expect("state.json");
    assert_eq!(state["status"], "exited");
    assert_eq!(state["exit_code"], 5);
    assert_eq!(container_dirs(&root), std::slice::from_ref(&id));
    assert!(!Path::new("/run/berth").join(&id).exists());

    // Started again: it runs once more from the same record, by name too.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            root.path
                .join("containers")
                .join(&id)
                .join("container.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let name = record["name"].as_str().unwrap().to_string();
    let out = root.run(&["start", "-a", &name]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "started\n");
}

#[test]
fn create_interactive_then_start_attached_with_stdin() {
    let root = root_with("createi", BUSYBOX);
    let id = root.ok(&["create", "-i", BUSYBOX, "cat"]);
    let id = id.trim();
    let out = run_with_stdin(&root, &["start", "-a", "-i", id], b"through start\n");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "through start\n");
}

#[test]
fn concurrent_creates_with_one_name() {
    let root = root_with("samename", BUSYBOX);
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| root.run(&["create", "--name", "same", BUSYBOX, "true"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one create wins the name");
    for out in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(out.status.code(), Some(125), "{}", describe(out));
        assert!(text(&out.stderr).contains("Conflict."), "{}", describe(out));
    }
    assert_eq!(
        container_dirs(&root),
        [text(&winners[0].stdout).trim().to_string()]
    );
}

#[test]
fn anonymous_volume_removed_with_rm() {
    let root = root_with("anonvol", BUSYBOX);
    let volumes = root.path.join("volumes");
    let count = || {
        std::fs::read_dir(&volumes)
            .map(|rd| rd.count())
            .unwrap_or(0)
    };
    let out = sh_ok(&root, &["-v", "/anon"], "echo x > /anon/f && cat /anon/f");
    assert_eq!(out, "x\n");
    assert_eq!(count(), 0, "the anonymous volume went with --rm");
    // Without --rm it stays with the container.
    root.ok(&["run", "-v", "/anon", BUSYBOX, "touch", "/anon/f"]);
    assert_eq!(count(), 1);
}

#[test]
fn start_of_a_command_not_found_fails_like_docker() {
    // Docker: `docker start -a` prints `Error response from daemon: … exec: "nope": …` and
    // `Error: failed to start containers: ID`, exits 1; the container stays Created, code 127.
    let root = root_with("startfail", BUSYBOX);
    let id = root.ok(&["create", BUSYBOX, "nope"]);
    let id = id.trim();
    let err = root.fails(&["start", "-a", id], 1);
    assert!(
        err.contains("exec: \"nope\": executable file not found in $PATH"),
        "{err}"
    );
    assert!(
        err.contains(&format!("failed to start containers: {id}")),
        "{err}"
    );
    let state = read_state(&root, id).expect("state.json");
    assert_eq!(state["status"], "created");
    assert_eq!(state["exit_code"], 127);
    assert!(!Path::new("/run/berth").join(id).exists());
    assert_eq!(cgroup_dirs(id), Vec::<std::path::PathBuf>::new());
    // `run` without --rm: 127, and the record stays (Created), as in Docker.
    root.fails(&["run", "--name", "nf", BUSYBOX, "nope"], 127);
    assert_eq!(container_dirs(&root).len(), 2);
}

#[test]
fn run_without_rm_keeps_exited_container() {
    let root = root_with("keep", BUSYBOX);
    let out = root.run(&[
        "run",
        "--name",
        "kept",
        BUSYBOX,
        "sh",
        "-c",
        "echo x > /file; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let dirs = container_dirs(&root);
    assert_eq!(dirs.len(), 1);
    let id = &dirs[0];
    let state = read_state(&root, id).expect("state.json");
    assert_eq!(state["status"], "exited");
    assert_eq!(state["exit_code"], 4);
    // Its upper layer keeps what it wrote.
    let upper = root.path.join("containers").join(id).join("upper/file");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "x\n");
    // No cgroup stays.
    assert_eq!(cgroup_dirs(id), Vec::<std::path::PathBuf>::new());
    // start without -a prints the name it was given and returns at once.
    let out = root.ok(&["start", "kept"]);
    assert_eq!(out, "kept\n");
    let err = root.fails(&["start", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Stdio.

/// Runs berth with `input` on its stdin; gives up (and kills the containers) after `timeout`.
fn run_with_stdin_timeout(
    root: &TestRoot,
    args: &[&str],
    input: &[u8],
    timeout: Duration,
) -> Output {
    let mut child = root
        .berth(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            kill_containers(root);
            // SAFETY: killing the berth CLI we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("berth {args:?} did not finish within {timeout:?}");
        }
    }
}

fn run_with_stdin(root: &TestRoot, args: &[&str], input: &[u8]) -> Output {
    run_with_stdin_timeout(root, args, input, Duration::from_secs(60))
}

#[test]
fn stdin_pipe() {
    let root = root_with("stdin", BUSYBOX);
    let out = run_with_stdin(&root, &["run", "-i", "--rm", BUSYBOX, "cat"], b"hi\n");
    assert_eq!(text(&out.stdout), "hi\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0));
    // Without -i the container's stdin is empty.
    let out = run_with_stdin(&root, &["run", "--rm", BUSYBOX, "cat"], b"ignored\n");
    assert_eq!(text(&out.stdout), "", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn stdout_and_stderr_kept_apart() {
    let root = root_with("stdio", BUSYBOX);
    let out = sh_out(&root, "echo out; echo err >&2; echo out2; echo err2 >&2");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "out\nout2\n");
    assert_eq!(text(&out.stderr), "err\nerr2\n");
}

/// ~10.9 MB of distinct numbers, space-separated (the monitor logs output line by line, which
/// is slow in a debug build; long lines keep the test quick), as the host's seq makes them.
const BIG_OUTPUT: &str = "seq 1 1500000 | tr '\\n' ' '";

fn host_sh(script: &str) -> Vec<u8> {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn large_output_while_running_through_a_slow_reader_intact() {
    let root = root_with("bigslow2", BUSYBOX);
    let script = format!("{BIG_OUTPUT}; sleep 5");
    let child = root
        .berth(&["run", "--rm", BUSYBOX, "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), host_sh(BIG_OUTPUT).len(), "length");
}

#[test]
fn large_output_intact() {
    let root = root_with("bigout", BUSYBOX);
    let out = sh_out(&root, BIG_OUTPUT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = host_sh(BIG_OUTPUT);
    assert_eq!(out.stdout.len(), want.len(), "length");
    assert!(out.stdout == want, "content differs");
    // Many short lines (1 MB).
    let out = run_out(&root, &[BUSYBOX, "seq", "1", "150000"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == host_sh("seq 1 150000"), "content differs");
}

#[test]
fn large_output_through_a_slow_reader_intact() {
    let root = root_with("bigslow", BUSYBOX);
    let child = root
        .berth(&["run", "--rm", BUSYBOX, "sh", "-c", BIG_OUTPUT])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the container write everything it can before anything is read.
    std::thread::sleep(Duration::from_secs(3));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = host_sh(BIG_OUTPUT);
    assert_eq!(out.stdout.len(), want.len(), "length");
    assert!(out.stdout == want, "content differs");
}

fn big_input() -> Vec<u8> {
    (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(7) + i / 4096) as u8)
        .collect()
}

#[test]
fn large_input_intact() {
    let root = root_with("bigin", BUSYBOX);
    let input = big_input();
    let out = run_with_stdin(&root, &["run", "-i", "--rm", BUSYBOX, "wc", "-c"], &input);
    assert_eq!(
        text(&out.stdout).trim(),
        (10 << 20).to_string(),
        "{}",
        describe(&out)
    );
    assert_no_containers(&root);
}

#[test]
fn large_input_echoed_back_intact() {
    let root = root_with("bigecho", BUSYBOX);
    let input = big_input();
    let out = run_with_stdin_timeout(
        &root,
        &["run", "-i", "--rm", BUSYBOX, "cat"],
        &input,
        Duration::from_secs(30),
    );
    assert_eq!(out.stdout.len(), input.len(), "{}", text(&out.stderr));
    assert!(out.stdout == input);
}

// ---------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn concurrent_runs_in_one_store() {
    let root = root_with("concurrent", BUSYBOX);
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| root.run(&["run", BUSYBOX, "cat", "/etc/hostname"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut hostnames = BTreeSet::new();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", describe(out));
        hostnames.insert(text(&out.stdout).trim().to_string());
    }
    assert_eq!(hostnames.len(), 8, "distinct IDs: {hostnames:?}");
    let dirs = container_dirs(&root);
    assert_eq!(dirs.len(), 8, "{dirs:?}");
    let names: BTreeSet<String> = dirs
        .iter()
        .map(|id| {
            let record: serde_json::Value = serde_json::from_slice(
                &std::fs::read(root.path.join("containers").join(id).join("container.json"))
                    .unwrap(),
            )
            .unwrap();
            record["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names.len(), 8, "distinct names: {names:?}");
}

#[test]
fn concurrent_rm_runs_leave_nothing() {
    let root = root_with("concurrentrm", BUSYBOX);
    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| root.run(&["run", "--rm", BUSYBOX, "true"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    }
    assert_no_containers(&root);
}

/// A cgroup hierarchy mounted a second time elsewhere on the host (a chroot being built
/// with the host's /sys, another runtime's container) must not change what a container
/// gets: each hierarchy once. Mounting one twice on the container's /sys/fs/cgroup/cpu
/// failed every start with "mount /sys/fs/cgroup: Device or resource busy".
#[test]
fn cgroup_hierarchies_mounted_twice_on_the_host() {
    let root = root_with("cgroup-twice", BUSYBOX);
    let v2 = Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/cgroup"])
        .output()
        .map(|o| text(&o.stdout).trim() == "cgroup2fs")
        .unwrap_or(false);
    let extra = root.dir.join("extra-cgroup");
    std::fs::create_dir_all(&extra).unwrap();
    let (fstype, opts) = if v2 {
        ("cgroup2", "none")
    } else {
        ("cgroup", "cpu")
    };
    let mounted = Command::new("mount")
        .args(["-t", fstype, "-o", opts, "cgroup"])
        .arg(&extra)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mount {fstype} -o {opts} {}",
        extra.display()
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&extra);
    let out = sh_ok(
        &root,
        &["--network", "none"],
        "grep -c ' /sys/fs/cgroup/cpu ' /proc/self/mountinfo || true",
    );
    let expected = if v2 { "0" } else { "1" };
    assert_eq!(
        out.trim(),
        expected,
        "mounts of /sys/fs/cgroup/cpu in the container"
    );
}

/// `run` keeps its start-up short: it does not sweep the image store (neither `tmp/` nor the
/// blob directory's temp files); the next command that writes the store does.
#[test]
fn run_leaves_the_store_sweep_to_other_commands() {
    let root = root_with("no-sweep", BUSYBOX);
    // Named like `temp_name`'s entries, by a process (pid 1, start time 0) that is not their
    // creator: abandoned.
    let work = root.path.join("tmp/.tmp-1-0-0-killed-commit");
    let blob = root.path.join("blobs/sha256/.tmp-1-0-0-killed-pull");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(&blob, b"partial").unwrap();
    run_ok(&root, &[BUSYBOX, "true"]);
    assert!(work.exists(), "run swept tmp/");
    assert!(blob.exists(), "run swept the blob directory");
    root.ok(&["tag", BUSYBOX, "swept:latest"]);
    assert!(!work.exists(), "tag left the abandoned work in tmp/");
    assert!(!blob.exists(), "tag left the abandoned temp blob");
    // `rmi` moves the layers into tmp/ under the store lock and deletes them after it.
    root.ok(&["rmi", BUSYBOX, "swept:latest"]);
    let left = |dir: &str| -> Vec<_> {
        std::fs::read_dir(root.path.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect()
    };
    assert_eq!(left("tmp"), Vec::<std::ffi::OsString>::new());
    assert_eq!(left("layers"), Vec::<std::ffi::OsString>::new());
}

/// `rm -v` of a container whose anonymous volume cannot be taken away (here a mount point:
/// rename gives EBUSY) removes the container all the same, as Docker's daemon does (it only
/// logs the volume): exit 0, a warning, and the container's moved files deleted.
#[test]
fn rm_whose_volume_stays_removes_the_container_and_warns() {
    let root = root_with("volstays", BUSYBOX);
    root.ok(&["run", "--name", "vs", "-v", "/anon", BUSYBOX, "true"]);
    let volume = std::fs::read_dir(root.path.join("volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("the anonymous volume");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&volume)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs on {volume:?}");
    let _unmount = Unmount(volume.clone());
    let out = root.run(&["rm", "-v", "vs"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "vs\n");
    assert!(
        stderr.starts_with("WARNING: unable to remove filesystem for ") && stderr.contains("busy"),
        "{stderr}"
    );
    assert_eq!(container_dirs(&root), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(root.path.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the container's moved files stayed: {left:?}"
    );
    assert!(volume.exists());
}

/// `create` reports its daemon's refusals as Docker's `create` does: the message as it is,
/// exit 1; `run` keeps its 125/127 for the same refusals.
#[test]
fn create_reports_daemon_refusals_with_exit_1() {
    let root = root_with("create-refused", BUSYBOX);
    let err = root.fails(&["create", "--cpu-shares", "-1", BUSYBOX, "true"], 1);
    assert_eq!(
        err,
        "Error response from daemon: shares: invalid argument\n"
    );
    let err = root.fails(
        &["create", "--device", "/dev/berth-nosuch", BUSYBOX, "true"],
        1,
    );
    assert!(
        err.starts_with(
            "Error response from daemon: error gathering device information while adding custom device \"/dev/berth-nosuch\""
        ),
        "{err}"
    );
    root.fails(&["run", "--rm", "--cpu-shares", "-1", BUSYBOX, "true"], 125);
    root.fails(
        &[
            "run",
            "--rm",
            "--device",
            "/dev/berth-nosuch",
            BUSYBOX,
            "true",
        ],
        127,
    );
    assert_eq!(container_dirs(&root), Vec::<String>::new());
}
