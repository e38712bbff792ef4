//! Acceptance tests of detached containers and their lifecycle (issue 5): `run -d`, `ps`,
//! `logs`, `start`/`stop`/`restart`/`kill`/`wait`, `pause`/`unpause`, `rename`, `top`,
//! `attach`, `exec`, `rm`, `container prune`, `inspect`, and the robustness points (a killed
//! monitor, a simulated reboot, concurrent stop + rm, a CLI session that goes away, a log
//! nobody reads). Each test has its own store, and a `Lab` guard that force-removes every
//! container it made, even when the test fails, so no monitor or container outlives the run.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{Lab, top_pids, top_without_ps};
use common::output::{describe, is_hex, text};
use common::procs::{alive, cgroup_dirs, cgroup_procs, reaped};
use common::pty::PtySession;
use common::wait::{Collected, collect, run_timeout, wait_until};
use common::{BUSYBOX, DEBIAN};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Splits a Docker-style table into rows of column → cell, by the header's column offsets.
fn parse_table(out: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut lines = out.lines();
    let header: Vec<char> = lines.next().expect("a header line").chars().collect();
    // Columns start after runs of two or more spaces (names like "CONTAINER ID" have one).
    let mut starts = vec![0];
    let mut i = 0;
    while i < header.len() {
        if header[i] == ' ' && header.get(i + 1) == Some(&' ') {
            while i < header.len() && header[i] == ' ' {
                i += 1;
            }
            starts.push(i);
        } else {
            i += 1;
        }
    }
    let cell = |chars: &[char], k: usize| -> String {
        let from = starts[k].min(chars.len());
        let to = starts
            .get(k + 1)
            .copied()
            .unwrap_or(usize::MAX)
            .min(chars.len());
        chars[from..to]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|k| cell(&header, k)).collect();
    let rows = lines
        .map(|l| {
            let chars: Vec<char> = l.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.clone(), cell(&chars, k)))
                .collect()
        })
        .collect();
    (names, rows)
}

/// Docker's generated names: `adjective_surname`.
fn is_generated_name(name: &str) -> bool {
    match name.split_once('_') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_lowercase())
                && b.bytes().all(|c| c.is_ascii_lowercase())
        }
        None => false,
    }
}

/// What `berth wait` prints for `name`.
fn wait_code(lab: &Lab, name: &str) -> String {
    lab.ok_within(&["wait", name], Duration::from_secs(30))
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// run -d, ps, logs
// ---------------------------------------------------------------------------------------------

#[test]
fn run_detached_prints_id_returns_at_once_and_ps_shows_it_up() {
    let lab = Lab::new("run-d");
    let started = Instant::now();
    let out = run_timeout(
        lab.berth(&["run", "-d", BUSYBOX, "sh", "-c", "echo hi; sleep 1000"]),
        Duration::from_secs(10),
    );
    let elapsed = started.elapsed();
    // run_timeout returned: the CLI process exited and nothing kept its stdout open.
    assert!(out.status.success(), "{}", describe(&out));
    assert!(elapsed < Duration::from_secs(5), "run -d took {elapsed:?}");
    let id = text(&out.stdout).trim().to_string();
    assert!(is_hex(&id, 64), "run -d printed {:?}", text(&out.stdout));

    let ps = lab.ok(&["ps"]);
    let (columns, rows) = parse_table(&ps);
    assert_eq!(
        columns,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "ps header:\n{ps}"
    );
    assert_eq!(rows.len(), 1, "ps:\n{ps}");
    let row = &rows[0];
    assert_eq!(row["CONTAINER ID"], id[..12], "ps:\n{ps}");
    assert_eq!(row["IMAGE"], BUSYBOX, "ps:\n{ps}");
    assert!(row["COMMAND"].starts_with("\"sh -c "), "ps:\n{ps}");
    assert!(row["COMMAND"].ends_with("…\""), "ps:\n{ps}");
    assert!(row["CREATED"].ends_with(" ago"), "ps:\n{ps}");
    assert!(row["STATUS"].starts_with("Up "), "ps:\n{ps}");
    assert!(
        is_generated_name(&row["NAMES"]),
        "generated name {:?} is not adjective_surname",
        row["NAMES"]
    );
    assert_eq!(lab.inspect(&id)["Name"], format!("/{}", row["NAMES"]));

    // The monitor logs asynchronously: give the line a moment to land.
    let mut logs = String::new();
    wait_until(Duration::from_secs(5), || {
        logs = lab.ok_within(&["logs", &id], Duration::from_secs(10));
        !logs.is_empty()
    });
    assert_eq!(logs, "hi\n");
}

/// Docker 20.10: `"sh -c 'echo hi; sle…"` — arguments containing a space are wrapped in single
/// quotes (daemon/list.go), then the whole is cut to 20 characters with `…` and quoted.
#[test]
fn ps_command_is_quoted_and_truncated_like_docker() {
    let lab = Lab::new("ps-command");
    lab.run_d(&["--name", "ct", BUSYBOX, "sh", "-c", "echo hi; sleep 1000"]);
    let out = lab.ok(&["ps", "--format", "{{.Command}}"]);
    assert_eq!(out, "\"sh -c 'echo hi; sle…\"\n");
    let out = lab.ok(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
    assert_eq!(out, "\"sh -c 'echo hi; sleep 1000'\"\n");
}

/// Docker's tabwriter (minwidth 10, padding 3): a column narrower than 10 characters is padded
/// to 10, so an empty PORTS column reads `PORTS     NAMES`.
#[test]
fn ps_table_pads_narrow_columns_like_docker() {
    let lab = Lab::new("ps-layout");
    lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    let ps = lab.ok(&["ps"]);
    let header = ps.lines().next().unwrap();
    assert!(header.ends_with("PORTS     NAMES"), "ps header: {header:?}");
}

#[test]
fn logs_keep_streams_apart_with_timestamps_and_tail_after_exit() {
    let lab = Lab::new("logs");
    lab.run_d_sh("ct", "echo out1; echo err1 >&2; sleep 0.2; echo out2");
    assert_eq!(wait_code(&lab, "ct"), "0");
    // After the exit the log is still there.
    let out = run_timeout(lab.berth(&["logs", "ct"]), Duration::from_secs(10));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "out1\nout2\n", "{}", describe(&out));
    assert_eq!(text(&out.stderr), "err1\n", "{}", describe(&out));

    let out = run_timeout(lab.berth(&["logs", "-t", "ct"]), Duration::from_secs(10));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "logs -t: {stdout}");
    for (line, want) in lines.iter().zip(["out1", "out2"]) {
        let (stamp, rest) = line.split_once(' ').expect("timestamp then text");
        assert_eq!(rest, want);
        assert!(
            stamp.len() >= 20
                && stamp.as_bytes()[4] == b'-'
                && stamp.as_bytes()[10] == b'T'
                && stamp.ends_with('Z'),
            "not an RFC 3339 timestamp: {stamp:?}"
        );
    }
    assert!(text(&out.stderr).ends_with(" err1\n"), "{}", describe(&out));

    assert_eq!(lab.ok(&["logs", "--tail", "1", "ct"]), "out2\n");
    assert_eq!(lab.ok(&["logs", "-n", "2", "ct"]), "out2\n"); // err1 is on stderr
}

#[test]
fn an_idle_monitor_gives_memory_back_and_goes_on_serving_its_container() {
    let lab = Lab::new("idle-monitor");
    let id = lab.run_d(&[
        "-i",
        "--name",
        "quiet",
        BUSYBOX,
        "sh",
        "-c",
        "echo before; read line; echo got $line; sleep 1.5; echo after; exit 4",
    ]);
    let monitor = lab.state_pid(&id, "monitor_pid");
    let rss_kb = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let fresh = rss_kb();
    // Quiet for longer than the monitor waits before it sheds what it inherited from the
    // CLI (about 4.5 MB resident before, 1.3 MB after, on the release build).
    std::thread::sleep(Duration::from_millis(1300));
    let idle = rss_kb();
    assert!(
        idle < 3000,
        "monitor RSS did not shrink when idle: {fresh} kB at the start, {idle} kB after"
    );
    // Everything the monitor does after shedding still works: exec, attach (a client
    // sending stdin), output to the log, the exit code.
    assert_eq!(lab.ok(&["exec", "quiet", "echo", "exec-ok"]), "exec-ok\n");
    let mut attach = lab.berth(&["attach", "quiet"]);
    attach.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = attach.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
    }
    assert_eq!(wait_code(&lab, "quiet"), "4");
    let _ = child.wait();
    assert_eq!(lab.ok(&["logs", "quiet"]), "before\ngot hello\nafter\n");
}

#[test]
fn logs_follow_returns_after_the_container_exits_with_all_lines() {
    let lab = Lab::new("logs-f");
    lab.run_d_sh("ct", "echo one; sleep 1; echo two; sleep 1; echo three");
    let started = Instant::now();
    let out = lab.ok_within(&["logs", "-f", "ct"], Duration::from_secs(20));
    assert_eq!(out, "one\ntwo\nthree\n");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "logs -f returned after {:?}, before the container had finished",
        started.elapsed()
    );
    assert!(lab.status_of("ct").starts_with("Exited (0)"));
    // Following an exited container prints the log and returns.
    assert_eq!(
        lab.ok_within(&["logs", "-f", "ct"], Duration::from_secs(5)),
        "one\ntwo\nthree\n"
    );
}

// ---------------------------------------------------------------------------------------------
// stop, start, restart, kill, wait
// ---------------------------------------------------------------------------------------------

#[test]
fn stop_returns_quickly_when_the_container_handles_sigterm() {
    let lab = Lab::new("stop-term");
    let id = lab.run_d_sh("ct", "trap 'exit 0' TERM; while :; do sleep 0.1; done");
    std::thread::sleep(Duration::from_millis(300));
    let pids = top_pids(&lab, "ct");
    assert!(!pids.is_empty());
    let started = Instant::now();
    let out = lab.ok_within(&["stop", "ct"], Duration::from_secs(15));
    let took = started.elapsed();
    assert_eq!(out, "ct\n");
    assert!(took < Duration::from_millis(1500), "stop took {took:?}");
    assert!(lab.status_of("ct").starts_with("Exited (0) "));
    assert!(wait_until(Duration::from_secs(2), || pids
        .iter()
        .all(|p| !alive(*p))));
    assert_eq!(lab.inspect(&id)["State"]["Running"], false);
    // Stopping a stopped container is fine (Docker too).
    lab.ok(&["stop", "ct"]);
}

#[test]
fn start_brings_a_stopped_container_back_with_its_files_and_restart() {
    let lab = Lab::new("start");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    lab.ok(&["exec", "ct", "sh", "-c", "echo kept > /kept"]);
    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    assert!(lab.status_of("ct").starts_with("Exited"));
    let first_pid = lab.state_pid(&id, "pid");

    assert_eq!(lab.ok(&["start", "ct"]), "ct\n");
    assert!(lab.status_of("ct").starts_with("Up "));
    assert_eq!(lab.ok(&["exec", "ct", "cat", "/kept"]), "kept\n");
    let second_pid = lab.state_pid(&id, "pid");
    assert_ne!(first_pid, second_pid);
    assert!(alive(second_pid));
    let before = lab.inspect("ct")["State"]["StartedAt"].clone();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        lab.ok_within(&["restart", "-t", "1", "ct"], Duration::from_secs(20)),
        "ct\n"
    );
    let state = lab.inspect("ct")["State"].clone();
    assert_eq!(state["Running"], true);
    assert_ne!(state["StartedAt"], before);
    let third_pid = state["Pid"].as_i64().unwrap() as i32;
    assert_ne!(third_pid, second_pid);
    assert!(alive(third_pid) && !alive(second_pid));
    assert_eq!(lab.ok(&["exec", "ct", "cat", "/kept"]), "kept\n");
    // restart of a stopped container starts it.
    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    lab.ok_within(&["restart", "ct"], Duration::from_secs(20));
    assert!(lab.status_of("ct").starts_with("Up "));
}

/// Docker: `start` of a running container is a no-op that prints the name, exit 0.
#[test]
fn start_of_a_running_container_is_a_no_op() {
    let lab = Lab::new("start-running");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    let pid = lab.state_pid(&id, "pid");
    let out = lab.run(&["start", "ct"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "ct\n");
    assert_eq!(lab.state_pid(&id, "pid"), pid);
    assert!(alive(pid));
}

#[test]
fn kill_sends_signals_and_refuses_a_stopped_container() {
    let lab = Lab::new("kill");
    let id = lab.run_d_sh(
        "ct",
        "trap 'echo got-usr1; echo usr1 > /tmp/usr1' USR1; while :; do sleep 0.1; done",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.ok(&["kill", "-s", "USR1", "ct"]), "ct\n");
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .ok(&["logs", "ct"])
            .contains("got-usr1")),
        "the USR1 trap did not run: logs {:?}",
        lab.ok(&["logs", "ct"])
    );
    assert_eq!(lab.ok(&["exec", "ct", "cat", "/tmp/usr1"]), "usr1\n");
    lab.ok(&["kill", "--signal", "SIGUSR1", &id[..10]]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .ok(&["logs", "ct"])
        .matches("got-usr1")
        .count()
        == 2));
    assert!(lab.status_of("ct").starts_with("Up "));

    // Default signal: KILL.
    lab.ok(&["kill", "ct"]);
    assert_eq!(wait_code(&lab, "ct"), "137");
    assert!(lab.status_of("ct").starts_with("Exited (137) "));

    let err = lab.fails(&["kill", "ct"], 1);
    assert!(
        err.starts_with("Error response from daemon: ") && err.contains("is not running"),
        "{err}"
    );
    let err = lab.fails(&["kill", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

/// Docker: `Error response from daemon: Invalid signal: NOPE`, exit 1.
#[test]
fn kill_with_an_unknown_signal_is_a_daemon_error() {
    let lab = Lab::new("kill-sig");
    lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    let err = lab.fails(&["kill", "-s", "NOPE", "ct"], 1);
    assert_eq!(err, "Error response from daemon: Invalid signal: NOPE\n");
    assert!(lab.status_of("ct").starts_with("Up "));
}

#[test]
fn wait_prints_the_exit_code() {
    let lab = Lab::new("wait");
    lab.run_d(&["--name", "seven", BUSYBOX, "sh", "-c", "sleep 1; exit 7"]);
    lab.run_d(&["--name", "zero", BUSYBOX, "true"]);
    let started = Instant::now();
    assert_eq!(
        lab.ok_within(&["wait", "seven", "zero"], Duration::from_secs(20)),
        "7\n0\n"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    // wait on an exited container answers at once.
    assert_eq!(wait_code(&lab, "seven"), "7");
    assert!(lab.status_of("seven").starts_with("Exited (7) "));
}

// ---------------------------------------------------------------------------------------------
// rm, prune, names, ps filters
// ---------------------------------------------------------------------------------------------

#[test]
fn rm_refuses_a_running_container_without_force() {
    let lab = Lab::new("rm");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    let pid = lab.state_pid(&id, "pid");
    let err = lab.fails(&["rm", "ct"], 1);
    assert_eq!(
        err.trim_end(),
        format!(
            "Error response from daemon: You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
        )
    );
    assert!(lab.status_of("ct").starts_with("Up "));

    assert_eq!(
        lab.ok_within(&["rm", "-f", "ct"], Duration::from_secs(20)),
        "ct\n"
    );
    lab.assert_gone(&id, &[pid]);
    assert!(lab.statuses().is_empty());
    let err = lab.fails(&["rm", "ct"], 1);
    assert!(err.contains("No such container: c"), "{err}");

    // A stopped container goes without -f.
    let id = lab.run_d(&["--name", "dd", BUSYBOX, "true"]);
    wait_code(&lab, "dd");
    assert_eq!(lab.ok(&["rm", &id]), format!("{id}\n"));
    lab.assert_gone(&id, &[]);
}

#[test]
fn rm_link_flag_is_answered_with_a_clear_message() {
    let lab = Lab::new("rm-link");
    lab.run_d(&["--name", "ct", BUSYBOX, "true"]);
    wait_code(&lab, "ct");
    let err = lab.fails(&["rm", "-l", "ct"], 1);
    assert!(err.to_lowercase().contains("link"), "{err}");
    // Nothing was removed.
    assert_eq!(lab.statuses().len(), 1);
}

#[test]
fn container_prune_removes_stopped_containers_only() {
    let lab = Lab::new("prune");
    let a = lab.run_d(&["--name", "aa", BUSYBOX, "true"]);
    let b = lab.run_d(&["--name", "bb", BUSYBOX, "sh", "-c", "exit 3"]);
    let up = lab.run_d(&["--name", "up", BUSYBOX, "sleep", "1000"]);
    wait_code(&lab, "aa");
    wait_code(&lab, "bb");
    let out = lab.ok(&["container", "prune", "-f"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"Deleted Containers:"), "{out}");
    let mut ids: Vec<&str> = lines[1..3].to_vec();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want, "{out}");
    assert_eq!(lines[3], "", "{out}");
    assert!(
        lines[4].starts_with("Total reclaimed space: ") && lines.len() == 5,
        "{out}"
    );
    let left = lab.statuses();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, "up");
    assert!(lab.container_dir(&up).exists());
    lab.assert_gone(&a, &[]);
    // A creation that crashed under an older berth left its directory among the containers
    // (new ones are built in the store's tmp/): not listed, and swept by prune.
    let abandoned = lab
        .path
        .join("containers")
        .join(format!(".tmp-999999999-1-0-{}", "e".repeat(64)));
    std::fs::create_dir_all(abandoned.join("upper")).unwrap();
    assert_eq!(lab.statuses().len(), 1);
    // Nothing to prune: only the total.
    assert_eq!(
        lab.ok(&["container", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    assert!(!abandoned.exists(), "prune left an abandoned creation");
}

#[test]
fn ps_lists_filters_and_formats() {
    let lab = Lab::new("ps");
    let first = lab.run_d(&["--name", "first", BUSYBOX, "true"]);
    wait_code(&lab, "first");
    std::thread::sleep(Duration::from_millis(20));
    let web = lab.run_d(&["--name", "web-1", BUSYBOX, "sleep", "1000"]);
    std::thread::sleep(Duration::from_millis(20));
    let last = lab.run_d(&["--name", "last", BUSYBOX, "sh", "-c", "exit 3"]);
    wait_code(&lab, "last");

    assert_eq!(lab.ok(&["ps", "-q"]), format!("{}\n", &web[..12]));
    assert_eq!(lab.ok(&["ps", "-q", "--no-trunc"]), format!("{web}\n"));
    assert_eq!(
        lab.ok(&["ps", "-a", "-q"]),
        format!("{}\n{}\n{}\n", &last[..12], &web[..12], &first[..12])
    );
    let all = lab.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3, "{all}");
    assert!(lines[0].starts_with("last Exited (3) "), "{all}");
    assert!(lines[0].ends_with(" ago"), "{all}");
    assert!(lines[1].starts_with("web-1 Up "), "{all}");
    assert!(lines[2].starts_with("first Exited (0) "), "{all}");

    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--format", "{{.Names}}"]);
        lab.ok(&a).lines().map(str::to_string).collect()
    };
    assert_eq!(names(&["-a", "-f", "status=exited"]), ["last", "first"]);
    assert_eq!(names(&["-a", "-f", "status=running"]), ["web-1"]);
    assert_eq!(names(&["-a", "-f", "name=web"]), ["web-1"]);
    assert_eq!(names(&["-a", "-f", "exited=3"]), ["last"]);
    assert_eq!(
        names(&["-a", "-f", &format!("id={}", &first[..8])]),
        ["first"]
    );
    assert_eq!(names(&["-l"]), ["last"]);
    assert_eq!(names(&["-n", "2"]), ["last", "web-1"]);
    assert_eq!(names(&["-f", "status=exited"]), Vec::<String>::new());
    assert_eq!(
        names(&["-a", "-f", &format!("ancestor={BUSYBOX}")]).len(),
        3
    );
    // ps -a shows the full table with one line each.
    let (_, rows) = parse_table(&lab.ok(&["ps", "-a"]));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["STATUS"].split(')').next(), Some("Exited (3"));
}

#[test]
fn a_taken_name_is_a_conflict() {
    let lab = Lab::new("names");
    let id = lab.run_d(&["--name", "web", BUSYBOX, "sleep", "1000"]);
    let err = lab.fails(&["run", "-d", "--name", "web", BUSYBOX, "true"], 125);
    let want = format!(
        "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(lab.statuses().len(), 1);
    // After rm, the name is free again.
    lab.ok_within(&["rm", "-f", "web"], Duration::from_secs(20));
    lab.run_d(&["--name", "web", BUSYBOX, "true"]);
}

#[test]
fn names_stay_unique_through_the_name_index_its_rebuild_and_stale_entries() {
    let lab = Lab::new("name-index");
    let index = lab.path.join("container-names");
    let id = lab.run_d(&["--name", "web", BUSYBOX, "sleep", "1000"]);
    assert_eq!(
        std::fs::read_link(index.join("web")).unwrap().to_str(),
        Some(id.as_str())
    );
    // A store from before the index: it is rebuilt from the records, the name stays taken.
    std::fs::remove_dir_all(&index).unwrap();
    let err = lab.fails(&["create", "--name", "web", BUSYBOX, "true"], 125);
    assert!(err.contains("Conflict."), "{err}");
    assert_eq!(lab.ok(&["exec", "web", "echo", "found"]), "found\n");
    // An entry left by a crash (its container is gone) does not hold the name.
    std::os::unix::fs::symlink("0".repeat(64), index.join("ghost")).unwrap();
    lab.ok(&["create", "--name", "ghost", BUSYBOX, "true"]);
    lab.fails(&["create", "--name", "ghost", BUSYBOX, "true"], 125);
    // `run --rm` gives its name back when it ends.
    lab.ok(&["run", "--rm", "--name", "once", BUSYBOX, "true"]);
    assert!(!index.join("once").exists());
    lab.ok(&["run", "--rm", "--name", "once", BUSYBOX, "true"]);
    lab.ok_within(&["rm", "-f", "web", "ghost"], Duration::from_secs(20));
    assert_eq!(std::fs::read_dir(&index).unwrap().count(), 0);
}

#[test]
fn every_command_accepts_name_full_id_and_unique_prefix() {
    let lab = Lab::new("refs");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sh", "-c", "echo x; sleep 1000"]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .ok(&["logs", "ct"])
        == "x\n"));
    for r in ["ct", "/ct", id.as_str(), &id[..12], &id[..5]] {
        assert_eq!(lab.ok(&["logs", r]), "x\n", "logs {r}");
        assert_eq!(lab.ok(&["exec", r, "echo", "e"]), "e\n", "exec {r}");
        assert_eq!(
            lab.ok(&["inspect", "-f", "{{.Id}}", r]),
            format!("{id}\n"),
            "inspect {r}"
        );
        assert!(!top_pids(&lab, r).is_empty(), "top {r}");
        lab.ok(&["kill", "-s", "CONT", r]);
        lab.ok(&["pause", r]);
        lab.ok(&["unpause", r]);
    }
    lab.ok_within(&["stop", "-t", "1", &id[..7]], Duration::from_secs(15));
    lab.ok(&["start", &id]);
    lab.ok_within(&["restart", "-t", "1", &id[..12]], Duration::from_secs(20));
    lab.ok(&["kill", &id[..6]]);
    assert_eq!(wait_code(&lab, &id[..9]), "137");
    let err = lab.fails(&["logs", "nosuch"], 1);
    assert!(
        err.contains("Error response from daemon: No such container: nosuch"),
        "{err}"
    );
    lab.ok(&["rm", &id[..8]]);
    assert!(lab.statuses().is_empty());
}

#[test]
fn rename_changes_the_name_everywhere() {
    let lab = Lab::new("rename");
    let id = lab.run_d(&["--name", "old", BUSYBOX, "sleep", "1000"]);
    lab.run_d(&["--name", "other", BUSYBOX, "sleep", "1000"]);
    lab.ok(&["rename", "old", "new"]);
    assert_eq!(lab.inspect(&id)["Name"], "/new");
    assert!(lab.status_of("new").starts_with("Up "));
    assert!(lab.statuses().iter().all(|(n, _)| n != "old"));
    assert_eq!(lab.ok(&["exec", "new", "echo", "ok"]), "ok\n");
    let err = lab.fails(&["rename", "new", "other"], 1);
    assert!(err.contains("Conflict."), "{err}");
    assert!(err.contains("\"/other\""), "{err}");
    let err = lab.fails(&["logs", "old"], 1);
    assert!(err.contains("No such container: old"), "{err}");
    // The old name is free for a new container.
    lab.run_d(&["--name", "old", BUSYBOX, "true"]);
}

/// `rename` does not wait for a `stop` that is waiting out its timeout (Docker's does not):
/// it takes the store lock, not the container's.
#[test]
fn rename_does_not_wait_for_a_stop() {
    let lab = Lab::new("rename-stop");
    // `sleep` as the container's init ignores SIGTERM: the stop waits its whole timeout.
    let id = lab.run_d(&["--name", "slow", BUSYBOX, "sleep", "1000"]);
    let mut stop = lab
        .berth(&["stop", "-t", "60", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = lab.container_dir(&id);
    assert!(
        wait_until(Duration::from_secs(20), || matches!(
            berth_sys::FileLock::try_exclusive_dir(&dir),
            Ok(None)
        )),
        "stop never took the container's lock"
    );
    let out = run_timeout(
        lab.berth(&["rename", "slow", "renamed"]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stop.try_wait().unwrap().is_none(),
        "the rename waited for the stop"
    );
    assert_eq!(lab.inspect(&id)["Name"], "/renamed");
    let _ = stop.kill();
    let _ = stop.wait();
}

#[test]
fn pause_freezes_the_container_and_unpause_thaws_it() {
    let lab = Lab::new("pause");
    let id = lab.run_d_sh(
        "ct",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.05; done",
    );
    let pid = lab.state_pid(&id, "pid");
    // Read through the host's view of the container's root: works while it is frozen.
    let counter = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/root/tmp/counter"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(5), || counter() > 2));
    assert_eq!(lab.ok(&["pause", "ct"]), "ct\n");
    let status = lab.status_of("ct");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (Paused)"),
        "{status:?}"
    );
    assert_eq!(lab.inspect("ct")["State"]["Paused"], true);
    assert_eq!(lab.inspect("ct")["State"]["Status"], "paused");
    std::thread::sleep(Duration::from_millis(200));
    let frozen = counter();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(counter(), frozen, "the counter advanced while paused");
    let err = lab.fails(&["pause", "ct"], 1);
    assert!(err.contains("is already paused"), "{err}");
    // Docker's words, with the container as it was named (exit 1, as a daemon error).
    let err = lab.fails(&["exec", "ct", "true"], 1);
    assert_eq!(
        err,
        "Error response from daemon: Container ct is paused, unpause the container before exec\n"
    );
    let id = lab.inspect("ct")["Id"].as_str().unwrap().to_string();
    let err = lab.fails(&["exec", "-d", &id[..7], "true"], 1);
    assert_eq!(
        err,
        format!(
            "Error response from daemon: Container {} is paused, unpause the container before exec\n",
            &id[..7]
        )
    );

    assert_eq!(lab.ok(&["unpause", "ct"]), "ct\n");
    assert!(wait_until(Duration::from_secs(5), || counter() > frozen + 3));
    assert!(!lab.status_of("ct").contains("Paused"));
    let err = lab.fails(&["unpause", "ct"], 1);
    assert!(err.contains("is not paused"), "{err}");

    // A paused container can be stopped and removed.
    lab.ok(&["pause", "ct"]);
    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    assert!(lab.status_of("ct").starts_with("Exited"));
    let err = lab.fails(&["pause", "ct"], 1);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn top_lists_the_container_processes() {
    let lab = Lab::new("top");
    let id = lab.run_d_sh("ct", "sleep 999 & sleep 1000");
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = top_without_ps(&lab, &["ct"]);
    assert_eq!(code, 0, "{err}");
    let (columns, rows) = parse_table(&out);
    // Docker's default: ps -ef.
    assert_eq!(
        columns,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{out}"
    );
    // Docker's client: columns at least 20 wide.
    assert!(
        out.starts_with(&format!("{:<20}{:<20}PPID", "UID", "PID")),
        "{out}"
    );
    let cmds: Vec<&str> = rows.iter().map(|r| r["CMD"].as_str()).collect();
    assert!(cmds.contains(&"sleep 999"), "{out}");
    assert!(cmds.contains(&"sleep 1000"), "{out}");
    assert_eq!(rows.len(), 2, "only the container's processes: {out}");
    let pids = top_pids(&lab, "ct");
    assert!(pids.contains(&lab.state_pid(&id, "pid")), "{out}");
    // The pids are real host pids of the container's cgroup.
    for dir in cgroup_dirs(&id)
        .iter()
        .filter(|d| d.ends_with(format!("pids/berth/{id}")))
    {
        let mut procs = cgroup_procs(dir);
        procs.sort();
        let mut got = pids.clone();
        got.sort();
        assert_eq!(procs, got);
    }
    let init = lab.state_pid(&id, "pid");
    let init_row = rows.iter().find(|r| r["PID"] == init.to_string()).unwrap();
    assert_eq!(init_row["UID"], "root");
    assert_eq!(init_row["TTY"], "?");
    assert_eq!(init_row["TIME"], "00:00:00");
    let child_row = rows.iter().find(|r| r["CMD"] == "sleep 999").unwrap();
    assert_eq!(child_row["PPID"], init.to_string(), "{out}");

    // ps's options, as Docker passes them through.
    let (code, out, err) = top_without_ps(&lab, &["ct", "-o", "pid,ppid,comm,args,stat,uid"]);
    assert_eq!(code, 0, "{err}");
    let (columns, rows) = parse_table(&out);
    assert_eq!(
        columns,
        ["PID", "PPID", "COMMAND", "COMMAND", "STAT", "UID"],
        "{out}"
    );
    assert_eq!(rows.len(), 2, "{out}");
    let first = out.lines().nth(1).unwrap();
    let cells: Vec<&str> = first.split_whitespace().collect();
    // The init leads its session (s); the child does not.
    assert_eq!(
        cells,
        [
            init.to_string().as_str(),
            cells[1],
            "sleep",
            "sleep",
            "1000",
            "Ss",
            "0"
        ],
        "{out}"
    );
    let (code, out, err) = top_without_ps(&lab, &["ct", "aux"]);
    assert_eq!(code, 0, "{err}");
    let (columns, rows) = parse_table(&out);
    assert_eq!(
        columns,
        [
            "USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND"
        ],
        "{out}"
    );
    let vsz: u64 = rows[0]["VSZ"].parse().unwrap();
    let rss: u64 = rows[0]["RSS"].parse().unwrap();
    assert!(vsz >= rss && rss > 0, "{out}");
    assert_eq!(rows[0]["TIME"], "0:00", "{out}");
    // Unknown columns and options are refused by name, a format without PID as Docker
    // refuses it; all as daemon errors (exit 1).
    let (code, _, err) = top_without_ps(&lab, &["ct", "-o", "pid,bogus"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: ps: error: unknown user-defined format specifier \"bogus\"\n"
    );
    let (code, _, err) = top_without_ps(&lab, &["ct", "-o", "comm"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: Couldn't find PID field in ps output\n"
    );
    let (code, _, err) = top_without_ps(&lab, &["ct", "-L"]);
    assert_eq!(code, 1);
    assert!(err.contains("unsupported option \"-L\""), "{err}");

    // Paused, the processes are still listed (as in Docker).
    lab.ok(&["pause", "ct"]);
    assert_eq!(top_pids(&lab, "ct").len(), 2);
    lab.ok(&["unpause", "ct"]);

    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    let err = lab.fails(&["top", "ct"], 1);
    assert!(err.contains("is not running"), "{err}");
}

/// `update`: new limits reach a running container's cgroup at once, are kept for its next
/// start and shown by inspect; Docker's refusals in Docker's words, leaving things as they
/// were.
#[test]
fn update_changes_a_containers_limits_and_keeps_them() {
    let lab = Lab::new("update");
    let id = lab.run_d(&["--name", "ct", "-m", "16m", BUSYBOX, "sleep", "1000"]);
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let files = if v2 {
        "cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    let inside = || lab.ok(&["exec", "ct", "sh", "-c", files]);
    let host_config = || {
        lab.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}",
            "ct",
        ])
    };
    assert_eq!(
        lab.ok(&[
            "update",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "-m",
            "24m",
            "--memory-swap",
            "48m",
            "--pids-limit",
            "50",
            "ct",
        ]),
        "ct\n"
    );
    // v2: the shares as cpu.weight (runc's conversion).
    let weight = if v2 { "20" } else { "512" };
    assert_eq!(inside(), format!("{weight}\n0\n25165824\n50\n"));
    assert_eq!(host_config(), "512 0 25165824 50331648 50\n");

    let err = lab.fails(&["update", "-m", "100m", "ct"], 1);
    assert_eq!(
        err,
        format!(
            "Error response from daemon: Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time\n"
        )
    );
    let err = lab.fails(&["update", "-c", "1", "ct"], 1);
    assert!(
        err.starts_with(&format!(
            "Error response from daemon: Cannot update container {id}: "
        )) && err.contains("the minimum allowed cpu-shares is 2"),
        "{err}"
    );
    let err = lab.fails(&["update", "--cpuset-cpus", "4096", "ct"], 1);
    assert!(
        err.starts_with(
            "Error response from daemon: Requested CPUs are not available - requested 4096, available: "
        ),
        "{err}"
    );
    let err = lab.fails(&["update", "ct"], 1);
    assert_eq!(
        err,
        "you must provide one or more flags when using this command\n"
    );
    let err = lab.fails(&["update", "-c", "5", "nosuch"], 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nosuch\n"
    );
    // Nothing of the refused updates stuck.
    assert_eq!(inside(), format!("{weight}\n0\n25165824\n50\n"));
    assert_eq!(host_config(), "512 0 25165824 50331648 50\n");

    // A stopped container keeps the new values for its next start.
    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    assert_eq!(lab.ok(&["update", "--cpu-shares", "256", "ct"]), "ct\n");
    lab.ok(&["start", "ct"]);
    let weight = if v2 { "10" } else { "256" };
    assert_eq!(inside(), format!("{weight}\n0\n25165824\n50\n"));
}

/// A container with a terminal: its processes' TTY is the pty's (pts/N), as ps names it.
#[test]
fn top_names_the_terminal_of_a_tty_container() {
    let lab = Lab::new("top-tty");
    lab.run_d(&["-t", "--name", "ct", BUSYBOX, "sleep", "1000"]);
    let (code, out, err) = top_without_ps(&lab, &["ct", "-o", "pid,tty,args"]);
    assert_eq!(code, 0, "{err}");
    let (_, rows) = parse_table(&out);
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0]["TT"].starts_with("pts/"), "{out}");
    assert_eq!(rows[0]["COMMAND"], "sleep 1000");
}

#[test]
fn inspect_has_dockers_fields_and_the_real_pid() {
    let lab = Lab::new("inspect");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sh", "-c", "sleep 1000"]);
    let v = lab.inspect("ct");
    for key in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "Name",
        "HostConfig",
        "Config",
        "Mounts",
        "NetworkSettings",
    ] {
        assert!(v.get(key).is_some(), "inspect lacks {key}: {v:#}");
    }
    for key in [
        "Status",
        "Running",
        "Paused",
        "Pid",
        "ExitCode",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(v["State"].get(key).is_some(), "State lacks {key}: {v:#}");
    }
    assert_eq!(v["Id"], id);
    assert_eq!(v["Name"], "/ct");
    assert_eq!(v["Path"], "sh");
    assert_eq!(v["Args"], serde_json::json!(["-c", "sleep 1000"]));
    // Config keeps the command as it was given (busybox has no entrypoint), as in Docker.
    assert_eq!(
        v["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "sleep 1000"])
    );
    assert_eq!(v["Config"]["Entrypoint"], serde_json::Value::Null);
    lab.ok(&[
        "create",
        "--name",
        "ep",
        "--entrypoint",
        "echo",
        BUSYBOX,
        "a",
        "b",
    ]);
    let ep = lab.inspect("ep");
    assert_eq!(ep["Config"]["Entrypoint"], serde_json::json!(["echo"]));
    assert_eq!(ep["Config"]["Cmd"], serde_json::json!(["a", "b"]));
    assert_eq!(ep["Path"], "echo");
    assert_eq!(ep["Args"], serde_json::json!(["a", "b"]));
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(v["State"]["Paused"], false);
    assert_eq!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"), "{v:#}");
    assert!(v["Mounts"].is_array());

    let pid: i32 = lab
        .ok(&["inspect", "-f", "{{.State.Pid}}", "ct"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(v["State"]["Pid"], pid);
    assert!(alive(pid));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, b"sleep\x001000\x00",
        "pid {pid} is the container's init"
    );
    let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_ne!(ns(pid), ns(std::process::id() as i32));

    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    let v = lab.inspect(&id[..12]);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["Pid"], 0);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_ne!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        lab.ok(&["inspect", "-f", "{{.State.ExitCode}}", "ct"]),
        "137\n"
    );
    assert_eq!(
        lab.ok(&["container", "inspect", "-f", "{{.Name}}", "ct"]),
        "/ct\n"
    );
}

// ---------------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_propagates_exit_codes_and_applies_user_env_and_workdir() {
    let lab = Lab::new("exec");
    let id = lab.run_d(&["--name", "ct", BUSYBOX, "sleep", "1000"]);
    let out = lab.run(&["exec", "ct", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let out = lab.run(&["exec", "ct", "sh", "-c", "echo to-out; echo to-err >&2"]);
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");

    let id_out = lab.ok(&["exec", "-u", "nobody", "ct", "id"]);
    assert!(id_out.starts_with("uid=65534(nobody) gid="), "{id_out}");
    let env = lab.ok(&["exec", "-e", "X=1", "ct", "env"]);
    assert!(env.lines().any(|l| l == "X=1"), "{env}");
    assert_eq!(lab.ok(&["exec", "-w", "/tmp", "ct", "pwd"]), "/tmp\n");
    let mut cmd = lab.berth(&["exec", "-i", "ct", "cat"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped through\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "piped through\n");
    // The exec'd process is in the container: same pid namespace as its init.
    let init = lab.state_pid(&id, "pid");
    let out = lab.ok(&["exec", "ct", "sh", "-c", "echo $$; readlink /proc/1/exe"]);
    assert!(
        out.ends_with("/bin/sleep\n") || out.contains("busybox"),
        "{out}"
    );
    assert!(alive(init));

    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    let err = lab.fails(&["exec", "ct", "true"], 1);
    // Docker 20.10 says "Container <id> is not running"; newer engines "container …".
    let lower = err.to_lowercase();
    assert!(
        err.starts_with("Error response from daemon: ")
            && lower.contains(&format!("container {id} is not running")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// In a real pty: attach, detach, exec -it
// ---------------------------------------------------------------------------------------------

fn pty_berth(lab: &Lab, args: &[&str]) -> PtySession {
    PtySession::spawn(lab.berth(args), 24, 80)
}

const LONG: Duration = Duration::from_secs(15);

#[test]
fn attach_in_a_pty_types_and_detaches_with_ctrl_p_ctrl_q() {
    let lab = Lab::with("attach", &[DEBIAN]);
    lab.run_d(&["-it", "--name", "ct", DEBIAN, "bash"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut term = pty_berth(&lab, &["attach", "ct"]);
    std::thread::sleep(Duration::from_millis(300));
    term.send("echo attached-$((40+2))\r");
    term.expect("attached-42\r\n", LONG);
    term.send("\x10\x11");
    let code = term.wait(LONG);
    // Docker prints "read escape sequence" and exits 1 here; berth exits 0.
    assert!(code == 0 || code == 1, "attach exited {code}");
    assert!(lab.status_of("ct").starts_with("Up "));

    // Attach again: the same shell is still there.
    let mut term = pty_berth(&lab, &["attach", "ct"]);
    std::thread::sleep(Duration::from_millis(300));
    term.send("echo again-$((1+1))\r");
    term.expect("again-2\r\n", LONG);
    // Exiting the attached shell stops the container; attach returns its code.
    term.send("exit 3\r");
    assert_eq!(term.wait(LONG), 3);
    assert!(wait_until(LONG, || lab
        .status_of("ct")
        .starts_with("Exited (3)")));
}

/// `run -it` in the foreground uses the monitor too: another terminal can attach to it.
#[test]
fn a_foreground_container_can_be_attached_from_another_terminal() {
    let lab = Lab::with("attach-fg", &[DEBIAN]);
    let mut fg = pty_berth(&lab, &["run", "-it", "--name", "ct", DEBIAN, "bash"]);
    fg.expect("# ", LONG);
    let id = lab
        .ok(&["inspect", "-f", "{{.Id}}", "ct"])
        .trim()
        .to_string();
    lab.started.borrow_mut().push(id);
    let mut other = pty_berth(&lab, &["attach", "ct"]);
    std::thread::sleep(Duration::from_millis(300));
    other.send("echo both-$((2*21))\r");
    other.expect("both-42\r\n", LONG);
    fg.expect("both-42\r\n", LONG);
    other.send("\x10\x11");
    other.wait(LONG);
    fg.send("exit 6\r");
    assert_eq!(fg.wait(LONG), 6);
    assert!(lab.status_of("ct").starts_with("Exited (6)"));
}

#[test]
fn exec_it_gives_a_prompt_with_both_shells_and_exit_code() {
    let lab = Lab::with("exec-it", &[DEBIAN]);
    lab.run_d(&["-it", "--name", "ct", DEBIAN, "bash"]);
    let mut term = pty_berth(&lab, &["exec", "-it", "ct", "bash"]);
    term.expect("# ", LONG);
    // Shells counted by terminal: the pipeline's own children are `bash` until they exec.
    term.send("ps -e -o comm=,tty= | awk '$1 == \"bash\" {print $2}' | sort -u | wc -l | sed 's/^/shells=/'\r");
    term.expect("shells=2\r\n", LONG);
    term.send("ps -e; echo END-$((1+1))\r");
    let listing = term.expect("END-2", LONG);
    assert!(listing.matches("bash").count() >= 2, "{listing}");
    term.send("exit 4\r");
    assert_eq!(term.wait(LONG), 4);
    assert!(lab.status_of("ct").starts_with("Up "));
}

#[test]
fn two_concurrent_exec_it_sessions_work() {
    let lab = Lab::with("exec-two", &[DEBIAN]);
    lab.run_d(&["-it", "--name", "ct", DEBIAN, "bash"]);
    let mut one = pty_berth(&lab, &["exec", "-it", "ct", "bash"]);
    let mut two = pty_berth(&lab, &["exec", "-it", "ct", "bash"]);
    one.expect("# ", LONG);
    two.expect("# ", LONG);
    one.send("echo one-$((40+1))\r");
    two.send("echo two-$((40+2))\r");
    one.expect("one-41\r\n", LONG);
    two.expect("two-42\r\n", LONG);
    // One shell per terminal (the container's and the two sessions'); counting terminals, not
    // processes, because the pipeline's own children are `bash` until they exec.
    one.send("ps -e -o comm=,tty= | awk '$1 == \"bash\" {print $2}' | sort -u | wc -l | sed 's/^/shells=/'\r");
    one.expect("shells=3\r\n", LONG);
    two.send("exit 2\r");
    assert_eq!(two.wait(LONG), 2);
    one.send("echo still-$((3*3))\r");
    one.expect("still-9\r\n", LONG);
    one.send("exit\r");
    assert_eq!(one.wait(LONG), 0);
    assert!(!one.transcript().contains("two-42"));
}

// ---------------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------------

/// kill -9 of the monitor, then (once init has reaped it) the container is still listed, and
/// `stop` and `rm -f` clean up everything.
#[test]
fn a_killed_monitor_leaves_a_stoppable_removable_container() {
    let lab = Lab::new("monitor-kill");
    let a = lab.run_d_sh("aa", "sleep 1000 & sleep 1000");
    let b = lab.run_d_sh("bb", "sleep 1000 & sleep 1000");
    std::thread::sleep(Duration::from_millis(300));
    let (a_pids, b_pids) = (top_pids(&lab, "aa"), top_pids(&lab, "bb"));
    for id in [&a, &b] {
        let monitor = lab.state_pid(id, "monitor_pid");
        assert!(alive(monitor));
        // SAFETY: kill(2) of the monitor this test started.
        unsafe { libc::kill(monitor, libc::SIGKILL) };
        // Its parent (init or a subreaper) reaps it; some inits take a while.
        assert!(wait_until(Duration::from_secs(30), || reaped(monitor)));
    }
    assert!(lab.status_of("aa").starts_with("Up "));
    assert!(lab.status_of("bb").starts_with("Up "));

    let started = Instant::now();
    lab.ok_within(&["stop", "-t", "1", "aa"], Duration::from_secs(20));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(lab.status_of("aa").starts_with("Exited"));
    assert!(
        wait_until(Duration::from_secs(2), || a_pids.iter().all(|p| !alive(*p))),
        "processes of a survived stop"
    );
    lab.ok_within(&["rm", "-f", "aa"], Duration::from_secs(20));
    lab.assert_gone(&a, &a_pids);

    lab.ok_within(&["rm", "-f", "bb"], Duration::from_secs(20));
    lab.assert_gone(&b, &b_pids);
    assert!(lab.statuses().is_empty());
}

/// The same, without waiting for the killed monitor to be reaped: a dead monitor that is still
/// a zombie (init reaps lazily, or a subreaper is busy) must count as dead.
#[test]
fn a_killed_monitor_zombie_does_not_fool_stop() {
    let lab = Lab::new("monitor-zombie");
    let id = lab.run_d_sh("aa", "sleep 1000 & sleep 1000");
    std::thread::sleep(Duration::from_millis(300));
    let pids = top_pids(&lab, "aa");
    let monitor = lab.state_pid(&id, "monitor_pid");
    // SAFETY: kill(2) of the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(5), || !alive(monitor)));
    lab.ok_within(&["stop", "-t", "1", "aa"], Duration::from_secs(20));
    let status = lab.status_of("aa");
    assert!(status.starts_with("Exited"), "after stop: {status:?}");
    assert!(
        wait_until(Duration::from_secs(2), || pids.iter().all(|p| !alive(*p))),
        "processes survived stop: {:?}",
        pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    lab.ok_within(&["rm", "-f", "aa"], Duration::from_secs(20));
    lab.assert_gone(&id, &pids);
}

/// A simulated reboot: the container's init and its monitor die without a word, and the runtime
/// directory goes away. The container shows Exited and starts again.
fn simulated_reboot(lab: &Lab, wait_for_reaper: bool) {
    let id = lab.run_d_sh("ct", "echo booted; sleep 1000");
    lab.ok(&["exec", "ct", "touch", "/survives"]);
    let (pid, monitor) = (lab.state_pid(&id, "pid"), lab.state_pid(&id, "monitor_pid"));
    let pids = top_pids(lab, "ct");
    // SAFETY: kill(2) of processes this test started.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
        for p in &pids {
            libc::kill(*p, libc::SIGKILL);
        }
    }
    assert!(wait_until(Duration::from_secs(5), || !alive(pid) && !alive(monitor)));
    if wait_for_reaper {
        assert!(wait_until(Duration::from_secs(30), || reaped(pid) && reaped(monitor)));
    }
    let _ = std::fs::remove_dir_all(Path::new("/run/berth").join(&id));
    // After a real reboot the cgroup is gone as well.
    for dir in cgroup_dirs(&id) {
        let _ = std::fs::remove_dir(dir);
    }

    let status = lab.status_of("ct");
    assert!(
        status.starts_with("Exited ("),
        "after the reboot: {status:?}"
    );
    assert_eq!(lab.inspect("ct")["State"]["Running"], false);
    assert_eq!(lab.ok(&["start", "ct"]), "ct\n");
    assert!(lab.status_of("ct").starts_with("Up "));
    assert_eq!(lab.ok(&["exec", "ct", "ls", "/survives"]), "/survives\n");
    assert!(wait_until(Duration::from_secs(5), || lab
        .ok(&["logs", "ct"])
        == "booted\nbooted\n"));
    let new_pid = lab.state_pid(&id, "pid");
    assert!(new_pid != pid && alive(new_pid));
    lab.ok_within(&["rm", "-f", "ct"], Duration::from_secs(20));
    lab.assert_gone(&id, &[new_pid]);
}

#[test]
fn a_simulated_reboot_shows_exited_and_start_works() {
    let lab = Lab::new("reboot");
    simulated_reboot(&lab, true);
}

#[test]
fn a_simulated_reboot_with_unreaped_processes() {
    let lab = Lab::new("reboot-zombie");
    simulated_reboot(&lab, false);
}

/// Runs berth commands at the same moment; (exit code, stdout + stderr) of each, in order.
fn race(lab: &Lab, commands: &[&[&str]]) -> Vec<(Option<i32>, String)> {
    let mut children: Vec<(Child, Collected)> = Vec::new();
    for args in commands {
        let mut cmd = lab.berth(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let out = collect(&mut child);
        children.push((child, out));
    }
    let mut outcomes = Vec::new();
    for ((mut child, out), args) in children.into_iter().zip(commands) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("berth {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let (o, e) = out.join().unwrap();
        outcomes.push((status.code(), format!("{args:?}: {}{}", text(&o), text(&e))));
    }
    outcomes
}

/// `stop` and `rm -f` at once on one container, many times: it is never left half removed —
/// and since `rm -f` always wins in the end, it is fully gone.
#[test]
fn concurrent_stop_and_rm_never_half_remove() {
    let lab = Lab::new("stop-rm");
    for round in 0..12 {
        let name = format!("c{round}");
        let id = lab.run_d(&["--name", &name, BUSYBOX, "sleep", "1000"]);
        let pids = top_pids(&lab, &name);
        let stop: &[&str] = &["stop", "-t", "1", &name];
        let rm: &[&str] = &["rm", "-f", &id];
        let outcomes = if round % 2 == 0 {
            race(&lab, &[stop, rm])
        } else {
            let mut o = race(&lab, &[rm, stop]);
            o.reverse();
            o
        };
        let listed = lab.statuses().iter().any(|(n, _)| *n == name);
        let dir = lab.container_dir(&id);
        let whole = dir.join("container.json").exists() && dir.join("config.json").exists();
        assert!(
            !listed || whole,
            "round {round}: listed but half removed: {outcomes:?}"
        );
        assert!(
            listed || !dir.exists(),
            "round {round}: unlisted but {dir:?} remains"
        );
        assert_eq!(outcomes[1].0, Some(0), "round {round}: {outcomes:?}");
        assert!(
            !listed,
            "round {round}: rm -f succeeded but it is listed: {outcomes:?}"
        );
        lab.assert_gone(&id, &pids);
    }
}

/// `start` and `rm -f` at once on a stopped container: `rm -f` succeeds, so afterwards nothing
/// of the container may be left — above all no container running without its directory.
#[test]
fn concurrent_start_and_rm_never_leave_an_orphan() {
    let lab = Lab::new("start-rm");
    for round in 0..12 {
        let name = format!("c{round}");
        let id = lab.run_d(&["--name", &name, BUSYBOX, "sleep", "1000"]);
        lab.ok(&["kill", &name]);
        wait_code(&lab, &name);
        let start: &[&str] = &["start", &name];
        let rm: &[&str] = &["rm", "-f", &id];
        let outcomes = if round % 2 == 0 {
            race(&lab, &[start, rm])
        } else {
            let mut o = race(&lab, &[rm, start]);
            o.reverse();
            o
        };
        assert_eq!(outcomes[1].0, Some(0), "round {round}: {outcomes:?}");
        let listed = lab.statuses().iter().any(|(n, _)| *n == name);
        assert!(
            !listed,
            "round {round}: rm -f succeeded but it is listed: {outcomes:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<i32> = cgroup_dirs(&id)
            .iter()
            .flat_map(|d| cgroup_procs(d))
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: processes {left:?} run on without a container: {outcomes:?}"
        );
        lab.assert_gone(&id, &[]);
    }
}

/// `exec` and `rm -f` at once: afterwards nothing is left running.
#[test]
fn concurrent_exec_and_rm_leave_nothing_running() {
    let lab = Lab::new("exec-rm");
    for round in 0..8 {
        let name = format!("c{round}");
        let id = lab.run_d(&["--name", &name, BUSYBOX, "sleep", "1000"]);
        let pids = top_pids(&lab, &name);
        let exec: &[&str] = &["exec", &name, "sleep", "1000"];
        let rm: &[&str] = &["rm", "-f", &id];
        let outcomes = race(&lab, &[exec, rm]);
        assert_eq!(outcomes[1].0, Some(0), "round {round}: {outcomes:?}");
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<i32> = cgroup_dirs(&id)
            .iter()
            .flat_map(|d| cgroup_procs(d))
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: {left:?} left: {outcomes:?}"
        );
        lab.assert_gone(&id, &pids);
    }
}

/// A process started in a session of its own; dropping it hangs up and kills that session's
/// process group (as when a terminal closes).
struct SessionGuard(Child);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        if pgid > 1 {
            // SAFETY: signalling the process group this test created with setsid.
            unsafe {
                libc::kill(-pgid, libc::SIGHUP);
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.0.wait();
    }
}

/// The CLI of `run -d` runs in a session of its own that is then killed wholesale (as when a
/// terminal closes): the container and its monitor are not part of it and keep running.
#[test]
fn a_detached_container_survives_the_end_of_the_cli_session() {
    let lab = Lab::new("session");
    let id_file = lab.dir.join("id");
    let script = format!(
        "{} --root {} run -d --name ct {BUSYBOX} sleep 1000 > {}; sleep 1000",
        env!("CARGO_BIN_EXE_berth"),
        lab.path.display(),
        id_file.display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&script).stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let session = SessionGuard(cmd.spawn().unwrap());
    let sid = session.0.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&id_file)
            .map(|s| s.trim().len() == 64)
            .unwrap_or(false)
    }));
    let id = std::fs::read_to_string(&id_file)
        .unwrap()
        .trim()
        .to_string();
    // The berth CLI is gone: only the shell (and its sleep) remain in the session.
    let in_session = |sid: i32| -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            // SAFETY: getsid takes an integer and touches no memory of ours.
            .filter(|p| alive(*p) && unsafe { libc::getsid(*p) } == sid)
            .collect()
    };
    let pid = lab.state_pid(&id, "pid");
    let monitor = lab.state_pid(&id, "monitor_pid");
    let members = in_session(sid);
    assert!(!members.contains(&pid) && !members.contains(&monitor));
    for p in &members {
        let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
        assert!(
            !exe.to_string_lossy().contains("berth"),
            "a berth process ({p}) is still in the CLI's session"
        );
    }
    drop(session);
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid) && alive(monitor));
    assert!(lab.status_of("ct").starts_with("Up "));
    // And it is still managed: stop works through its monitor.
    lab.ok_within(&["stop", "-t", "1", "ct"], Duration::from_secs(15));
    assert!(lab.status_of("ct").starts_with("Exited (137)"));
}

/// 50 MB on stdout with nobody attached: the monitor drains it into the log and the container
/// finishes.
#[test]
fn logs_never_block_the_container() {
    let lab = Lab::new("log-flood");
    let started = Instant::now();
    lab.run_d_sh(
        "ct",
        "yes 0123456789012345678901234567890123456789 | head -c 50000000; echo; echo end",
    );
    assert_eq!(
        lab.ok_within(&["wait", "ct"], Duration::from_secs(60)),
        "0\n"
    );
    let took = started.elapsed();
    eprintln!("50 MB of output took {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(lab.ok(&["logs", "--tail", "1", "ct"]), "end\n");
    let log_lines = lab
        .ok_within(&["logs", "ct"], Duration::from_secs(60))
        .lines()
        .count();
    assert_eq!(log_lines, 50_000_000 / 41 + 1 + 1);
}
