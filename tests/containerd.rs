//! berth-runc under containerd (Debian's containerd 1.6 and its `io.containerd.runc.v2`
//! shim), driven with `ctr --runc-binary` as a user would: a containerd of the test's own
//! (root, state and socket in a scratch directory), the busybox fixture image from the local
//! registry.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::containerd::Containerd;

fn start() -> Containerd {
    Containerd::start("containerd", |_, _| {
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".to_string()
    })
}

fn task_status(c: &Containerd, id: &str) -> String {
    c.ok(&["task", "ls"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

const IMAGE: &str = common::BUSYBOX;

#[test]
fn ctr_runs_tasks_through_berth_runc() {
    let c = start();
    c.ok(&["image", "pull", "--plain-http", IMAGE]);

    // Foreground: output and exit code come through the shim.
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        c.runc(),
        IMAGE,
        "fg",
        "sh",
        "-c",
        "echo hello from berth-runc; id -u; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from berth-runc\n0\n"
    );

    // A detached task: exec, ps, pause/resume, kill, rm.
    c.ok(&[
        "run",
        "-d",
        "--runc-binary",
        c.runc(),
        IMAGE,
        "bg",
        "sleep",
        "1000",
    ]);
    assert_eq!(task_status(&c, "bg"), "RUNNING");
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo in bg; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "in bg\n");
    let ps = c.ok(&["task", "ps", "bg"]);
    assert_eq!(ps.lines().count(), 2, "the init alone: {ps}");
    c.ok(&["task", "pause", "bg"]);
    assert_eq!(task_status(&c, "bg"), "PAUSED");
    c.ok(&["task", "resume", "bg"]);
    assert_eq!(task_status(&c, "bg"), "RUNNING");
    c.ok(&["task", "kill", "-s", "SIGKILL", "bg"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while task_status(&c, "bg") != "STOPPED" {
        assert!(Instant::now() < deadline, "the task did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.ok(&["task", "rm", "bg"]);
    c.ok(&["container", "rm", "bg"]);

    // -t: the shim's console socket gets the pty (script gives ctr a terminal).
    let o = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "ctr --address {} run -t --rm --runc-binary {} {IMAGE} tty sh -c 'tty; exit 2'",
            c.socket().display(),
            c.runc()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("/dev/pts/0"),
        "{o:?}"
    );

    // Nothing left behind: no task, no berth-runc state, no cgroup.
    assert_eq!(c.ok(&["task", "ls", "-q"]), "");
    for id in ["fg", "bg", "tty"] {
        let state = Path::new("/run/containerd/runc/default").join(id);
        assert!(!state.exists(), "{} left", state.display());
        // The cgroup, on v1 (the pids hierarchy) or v2 (the unified one).
        for root in ["/sys/fs/cgroup/pids/default", "/sys/fs/cgroup/default"] {
            let cg = Path::new(root).join(id);
            assert!(!cg.exists(), "{} left", cg.display());
        }
    }
}
