//! A store that cannot be written, or that was left half-written (issue 22, items 4 and 6):
//! a read-only store refuses every write with one clear line and stays as it was; a full
//! store loses no container exit and runs no container it cannot record; the temp data of a
//! killed command goes at the next command, never that of one still running; `rename`
//! racing `rm` leaves no stale name; names too long for the store, and a `--root` that is a
//! file, get one line that names the problem. Each test has its own store (a tmpfs of its
//! own where it is made full or read-only).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lab::Lab;
use common::output::{describe, text};
use common::procs::{alive, cgroup_dirs, start_time};
use common::wait::wait_until;
use common::{BUSYBOX, TestRoot};

/// What a store holds: every path under it, with its kind, size and (small files) contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (String, u64, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, u64, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = format!("{:?}", meta.file_type());
            let bytes = if meta.is_file() && meta.len() < 1 << 20 {
                std::fs::read(&path).unwrap()
            } else if meta.is_symlink() {
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            out.insert(rel, (kind, meta.len(), bytes));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Fills the file system of `dir` with a file `fill` until no byte more fits.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("fill");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 1 << 20];
    loop {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOSPC),
                "filling {}",
                dir.display()
            );
            break;
        }
    }
    // The last partial block too.
    while file.write_all(&[0u8; 512]).is_ok() {}
    path
}

fn state_json(lab: &Lab, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(lab.container_dir(id).join("state.json")).unwrap())
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A read-only store (item 4)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_read_only_store_refuses_every_write_and_stays_as_it_was() {
    let lab = Lab::on_tmpfs("read-only", 64);
    lab.ok(&["create", "--name", "c1", BUSYBOX, "true"]);
    lab.ok(&["create", "--name", "c2", BUSYBOX, "true"]);
    lab.ok(&["run", "--name", "c3", BUSYBOX, "true"]);
    let up = lab.run_d(&["--name", "up", BUSYBOX, "sleep", "1000"]);
    // Names and states ("Exited (0)"), without the times that pass meanwhile.
    let statuses = || -> Vec<(String, String)> {
        lab.statuses()
            .into_iter()
            .map(|(name, status)| {
                // The state without its age ("Up Less than a second" becomes "Up 1
                // second" while the test runs); an exit's code and a pause are kept.
                let mut words = status.split_whitespace();
                let mut state = words.next().unwrap_or("").to_string();
                if state == "Exited" {
                    state = format!("{state} {}", words.next().unwrap_or(""));
                }
                if status.ends_with("(Paused)") {
                    state.push_str(" (Paused)");
                }
                (name, state)
            })
            .collect()
    };
    let before_statuses = statuses();
    let before = snapshot(&lab.path);
    lab.remount(true);

    // (command, Docker's exit code)
    let writes: &[(&[&str], i32)] = &[
        (&["rm", "c1"], 1),
        (&["rm", "-f", "c2"], 1),
        (&["rm", "-v", "c1", "c3"], 1),
        (&["rm", "-f", "up"], 1),
        (&["pause", "up"], 1),
        (&["container", "prune", "-f"], 1),
        (&["rename", "c1", "c9"], 1),
        (&["create", "--name", "c4", BUSYBOX, "true"], 125),
        (&["run", "--rm", BUSYBOX, "true"], 125),
        (&["commit", "c3"], 1),
        (&["tag", BUSYBOX, "x:1"], 1),
        (&["rmi", "-f", BUSYBOX], 1),
        (&["image", "prune", "-af"], 1),
    ];
    for (args, code) in writes {
        let out = lab.run(args);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "berth {args:?}: {}",
            describe(&out)
        );
        assert!(
            stderr.contains("Read-only file system"),
            "berth {args:?} does not say why: {}",
            describe(&out)
        );
        for line in stderr.lines() {
            assert!(
                line.starts_with("Error response from daemon: ") || line.starts_with("berth: "),
                "berth {args:?}: not one error line each: {stderr}"
            );
        }
        // No container is reported removed.
        for name in ["c1", "c2", "c3", "up"] {
            assert!(
                !text(&out.stdout).lines().any(|l| l == name),
                "berth {args:?} reports {name} removed: {}",
                describe(&out)
            );
        }
    }
    assert!(before == snapshot(&lab.path), "the read-only store changed");
    assert_eq!(
        statuses(),
        before_statuses,
        "ps -a changed on a read-only store"
    );
    // Neither killed by the `rm -f` that could not remove it, nor left frozen by the
    // `pause` that could not record it.
    assert!(
        alive(lab.state_pid(&up, "pid")),
        "rm -f killed a container it kept"
    );
    for dir in cgroup_dirs(&up) {
        for (file, thawed) in [("freezer.state", "THAWED"), ("cgroup.freeze", "0")] {
            if let Ok(state) = std::fs::read_to_string(dir.join(file)) {
                assert_eq!(state.trim(), thawed, "{}", dir.join(file).display());
            }
        }
    }

    // Writable again, the same commands work.
    lab.remount(false);
    assert_eq!(lab.ok(&["rm", "c1"]).trim(), "c1");
}

// ---------------------------------------------------------------------------------------------
// A full store (item 6)
// ---------------------------------------------------------------------------------------------

#[test]
fn an_exit_the_full_store_had_no_room_for_is_recorded_when_space_returns() {
    let lab = Lab::on_tmpfs("full-exit", 64);
    // The container exits when the test says so, through a directory off the store.
    let signal = lab.dir.join("signal");
    std::fs::create_dir_all(&signal).unwrap();
    let volume = format!("{}:/signal", signal.display());
    let id = lab.run_d(&[
        "--name",
        "f1",
        "-v",
        &volume,
        BUSYBOX,
        "sh",
        "-c",
        "while [ ! -e /signal/go ]; do sleep 0.05; done; exit 3",
    ]);
    let monitor = lab.state_pid(&id, "monitor_pid");
    let filler = fill(&lab.path);
    std::fs::write(signal.join("go"), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || !alive(monitor)),
        "the monitor did not finish"
    );
    // The store could not take the exit: state.json still says running.
    assert_eq!(state_json(&lab, &id)["status"], "running");
    assert!(
        lab.status_of("f1").starts_with("Exited (3)"),
        "ps -a on a full store: {:?}",
        lab.statuses()
    );
    assert_eq!(lab.ok(&["wait", "f1"]).trim(), "3");
    assert_eq!(lab.inspect("f1")["State"]["ExitCode"], 3);

    std::fs::remove_file(filler).unwrap();
    assert!(lab.status_of("f1").starts_with("Exited (3)"));
    let state = state_json(&lab, &id);
    assert_eq!(state["status"], "exited", "{state}");
    assert_eq!(state["exit_code"], 3, "{state}");
    assert!(
        !Path::new("/run/berth").join(&id).exists(),
        "the exit kept aside is not cleared once recorded"
    );
}

#[test]
fn an_exit_whose_container_files_are_gone_is_not_kept_aside() {
    let lab = Lab::new("gone-exit");
    let id = lab.run_d(&["--name", "g1", BUSYBOX, "sleep", "1000"]);
    let pid = lab.state_pid(&id, "pid");
    let monitor = lab.state_pid(&id, "monitor_pid");
    // The store went away under a running container (its test root deleted, say).
    std::fs::remove_dir_all(lab.container_dir(&id)).unwrap();
    // SAFETY: kill(2) of the container's init, which this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_until(Duration::from_secs(60), || !alive(monitor)),
        "the monitor did not finish"
    );
    assert!(
        !Path::new("/run/berth").join(&id).exists(),
        "an exit kept aside for a container that is gone"
    );
}

#[test]
fn a_start_the_full_store_cannot_record_fails_and_leaves_nothing_running() {
    let lab = Lab::on_tmpfs("full-start", 64);
    let id = lab.ok(&["create", "--name", "f2", BUSYBOX, "sleep", "987654"]);
    let id = id.trim().to_string();
    let filler = fill(&lab.path);
    let out = lab.run(&["start", "f2"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("No space left on device"),
        "{}",
        describe(&out)
    );
    assert_eq!(lab.status_of("f2"), "Created");
    assert!(
        cgroup_dirs(&id).is_empty(),
        "the container's cgroup is left"
    );
    let sleeping = Command::new("pgrep")
        .args(["-f", "^sleep 987654$"])
        .output()
        .unwrap();
    assert!(
        text(&sleeping.stdout).trim().is_empty(),
        "the container runs unrecorded: {}",
        text(&sleeping.stdout)
    );

    std::fs::remove_file(filler).unwrap();
    lab.ok(&["start", "f2"]);
    assert!(lab.status_of("f2").starts_with("Up"));
}

// ---------------------------------------------------------------------------------------------
// Temp data of killed commands (item 6)
// ---------------------------------------------------------------------------------------------

/// Entries under `dir` whose temporary names say `pid` made them.
fn temps_of(dir: &Path, pid: u32) -> Vec<String> {
    let prefix = format!(".tmp-{pid}-");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn du(path: &Path) -> u64 {
    let out = Command::new("du").arg("-sb").arg(path).output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_killed_commit_leaves_no_temp_data_past_the_next_command_but_a_running_ones_stays() {
    let lab = Lab::new("killed-commit");
    lab.ok(&[
        "run",
        "--name",
        "big",
        BUSYBOX,
        "sh",
        "-c",
        "head -c 48000000 /dev/urandom > /big",
    ]);
    // What a command still running is writing: named after this (live) test process.
    let own = std::process::id();
    let live = lab.path.join("tmp").join(format!(
        ".tmp-{own}-{}-0-commit",
        start_time(own as i32).unwrap()
    ));
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("layer.tar"), "in progress").unwrap();

    let mut commit = lab.berth(&["commit", "big", "big:1"]).spawn().unwrap();
    let pid = commit.id();
    let tmp = lab.path.join("tmp");
    let midway = wait_until(Duration::from_secs(120), || {
        !temps_of(&tmp, pid).is_empty() && du(&tmp) > 8_000_000
    });
    commit.kill().unwrap();
    let status = commit.wait().unwrap();
    assert!(
        midway && status.code().is_none(),
        "the commit was not caught half-way ({status:?})"
    );
    assert!(!temps_of(&tmp, pid).is_empty(), "nothing left to sweep");

    // The next command that writes the store, one that takes no image store lock.
    lab.ok(&["create", BUSYBOX, "true"]);
    assert_eq!(temps_of(&tmp, pid), Vec::<String>::new());
    assert_eq!(
        temps_of(&lab.path.join("blobs/sha256"), pid),
        Vec::<String>::new()
    );
    assert!(du(&tmp) < 1_000_000, "tmp/ still holds {} bytes", du(&tmp));
    assert!(
        live.join("layer.tar").exists(),
        "the temp data of a running command was swept"
    );
    std::fs::remove_dir_all(&live).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Names and roots (item 6)
// ---------------------------------------------------------------------------------------------

#[test]
fn rename_racing_rm_leaves_no_stale_name_and_prints_no_store_path() {
    let lab = Lab::new("rename-rm-race");
    let root = lab.path.display().to_string();
    for i in 0..15 {
        let old = format!("r{i}");
        let new = format!("n{i}");
        lab.ok(&["create", "--name", &old, BUSYBOX, "true"]);
        let rename = lab
            .berth(&["rename", &old, &new])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rm = lab.run(&["rm", &old]);
        let rename = rename.wait_with_output().unwrap();
        for out in [&rm, &rename] {
            let stderr = text(&out.stderr);
            assert!(!stderr.contains(&root), "a store path printed: {stderr}");
            assert!(
                out.status.success() || stderr.contains("No such container"),
                "{}",
                describe(out)
            );
        }
    }
    // Every name entry names a container that has that name, and every container has one.
    let names = lab.path.join("container-names");
    let mut named = Vec::new();
    for entry in std::fs::read_dir(&names).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = std::fs::read_link(entry.path()).unwrap();
        let record = lab
            .container_dir(id.to_str().unwrap())
            .join("container.json");
        let bytes = std::fs::read(&record)
            .unwrap_or_else(|e| panic!("name {name} is left for a removed container: {e}"));
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record["name"], name.as_str(), "entry {name} is stale");
        named.push(id.to_string_lossy().into_owned());
    }
    let mut ids = lab.container_ids();
    ids.sort();
    named.sort();
    assert_eq!(ids, named);
}

#[test]
fn a_name_too_long_for_the_store_is_refused_without_a_store_path() {
    let lab = Lab::new("long-name");
    let root = lab.path.display().to_string();
    let long = "a".repeat(300);
    let longest = "b".repeat(255);

    let stderr = lab.fails(&["create", "--name", &long, BUSYBOX, "true"], 125);
    assert!(
        stderr.contains(&format!("Invalid container name ({long})")) && !stderr.contains(&root),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    lab.ok(&["create", "--name", &longest, BUSYBOX, "true"]);
    lab.ok(&["create", "--name", "short", BUSYBOX, "true"]);
    let stderr = lab.fails(&["rename", "short", &long], 1);
    assert!(
        stderr.starts_with(&format!(
            "Error response from daemon: Invalid container name ({long})"
        )) && !stderr.contains(&root),
        "{stderr}"
    );
    assert_eq!(
        lab.ok(&["inspect", "--format", "{{.Name}}", &longest])
            .trim(),
        format!("/{longest}")
    );
    assert_eq!(
        lab.ok(&["inspect", "--format", "{{.Name}}", "short"])
            .trim(),
        "/short"
    );
}

#[test]
fn a_root_that_is_a_file_is_named_in_one_line() {
    let root = TestRoot::new("root-file");
    let file = root.dir.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    for args in [
        &["ps", "-a"][..],
        &["images"],
        &["create", BUSYBOX],
        &["pull", BUSYBOX],
        &["rm", "x"],
        &["system", "df"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(&file)
            .args(args)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "berth {args:?}: {}", describe(&out));
        assert_eq!(stderr.lines().count(), 1, "berth {args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{} is not a directory", file.display()))
                && !stderr.contains("File exists"),
            "berth {args:?}: {stderr}"
        );
    }
}

/// `commit` racing `rm` of the same container (issue 22 review): the container's files go
/// while the commit walks them, and the commit said so with a path of the store; Docker says
/// the container is gone.
#[test]
fn a_commit_whose_container_is_removed_meanwhile_says_no_such_container() {
    let lab = Lab::new("commit-rm");
    // Enough files that the commit's walk takes a while (a tar header each).
    lab.ok(&[
        "run",
        "--name",
        "many",
        BUSYBOX,
        "sh",
        "-c",
        "mkdir /d && cd /d && seq 100000 | xargs touch",
    ]);
    let commit = lab
        .berth(&["commit", "many", "many:1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = commit.id();
    let tmp = lab.path.join("tmp");
    let midway = wait_until(Duration::from_secs(120), || {
        temps_of(&tmp, pid).iter().any(|t| {
            std::fs::metadata(tmp.join(t).join("layer.tar")).is_ok_and(|m| m.len() > 1 << 20)
        })
    });
    assert!(midway, "the commit's walk was not caught half-way");
    lab.ok(&["rm", "many"]);
    let out = commit.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "Error response from daemon: No such container: many\n"
    );
    assert!(!lab.ok(&["images"]).contains("many"));
}

/// `rmi` and `image prune` with a container record they cannot read (issue 22 review): the
/// image it uses was deleted, as if no container used it; now nothing is.
#[test]
fn rmi_and_image_prune_refuse_when_a_container_cannot_be_read() {
    let lab = Lab::new("rmi-unreadable");
    let id = lab.ok(&["create", BUSYBOX, "true"]).trim().to_string();
    let record = lab.path.join("containers").join(&id).join("container.json");
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, "{").unwrap();
    let err = lab.fails(&["rmi", BUSYBOX], 1);
    let prune = lab.run(&["image", "prune", "-a", "-f"]);
    std::fs::write(&record, good).unwrap();
    assert!(
        err.starts_with("Error response from daemon: container file ") && err.contains("corrupt"),
        "{err}"
    );
    assert!(!prune.status.success(), "{}", describe(&prune));
    assert!(
        text(&prune.stderr).contains("corrupt"),
        "{}",
        describe(&prune)
    );
    assert!(lab.ok(&["images", "-q"]).trim().len() == 12);
    lab.ok(&["rm", &id]);
}
