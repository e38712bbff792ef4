//! `Lab`: a test's store with images pulled, which force-removes every container it made when
//! dropped, so no monitor or container outlives the test, even when the test fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::output::{describe, is_hex, text};
use super::procs::{alive, cgroup_dirs, cgroup_procs, start_time};
use super::wait::{run_timeout, run_timeout_quiet};
use super::{BUSYBOX, TestRoot, fixtures};

/// A test's store with images pulled; on drop, every container in it is force-removed (and,
/// should berth fail at that, its processes are killed directly).
pub struct Lab {
    root: TestRoot,
    /// Every container started through `run_d`, to check for leftovers at the end.
    pub started: std::cell::RefCell<Vec<String>>,
    /// The store is a tmpfs of its own (`Lab::on_tmpfs`), unmounted when dropped.
    tmpfs: bool,
}

impl std::ops::Deref for Lab {
    type Target = TestRoot;
    fn deref(&self) -> &TestRoot {
        &self.root
    }
}

impl Lab {
    pub fn new(name: &str) -> Lab {
        Lab::with(name, &[BUSYBOX])
    }

    pub fn with(name: &str, images: &[&str]) -> Lab {
        fixtures();
        let root = TestRoot::new(&format!("lifecycle-{name}"));
        for image in images {
            root.ok(&["pull", "-q", image]);
        }
        Lab {
            root,
            started: Default::default(),
            tmpfs: false,
        }
    }

    /// A lab whose store is a tmpfs of `megabytes`, with busybox pulled: a store a test can
    /// fill up or make read-only (`remount`).
    pub fn on_tmpfs(name: &str, megabytes: u32) -> Lab {
        fixtures();
        let root = TestRoot::new(&format!("lifecycle-{name}"));
        mount(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0700"),
                "tmpfs",
            ],
            &root.path,
        );
        let lab = Lab {
            root,
            started: Default::default(),
            tmpfs: true,
        };
        lab.ok(&["pull", "-q", BUSYBOX]);
        lab
    }

    /// Remounts the lab's tmpfs store read-only or read-write.
    pub fn remount(&self, read_only: bool) {
        assert!(self.tmpfs, "only a lab on a tmpfs can be remounted");
        let how = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        mount(&["-o", how], &self.path);
    }

    /// `run -d ARGS…`: asserts a full ID is printed and returns it.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let id = out.trim().to_string();
        assert!(is_hex(&id, 64), "run -d printed {out:?}, not a full ID");
        self.started.borrow_mut().push(id.clone());
        id
    }

    /// `run -d --name NAME busybox sh -c SCRIPT`: the container's full ID.
    pub fn run_d_sh(&self, name: &str, script: &str) -> String {
        self.run_d(&["--name", name, BUSYBOX, "sh", "-c", script])
    }

    /// Stdout of a command expected to succeed, within `timeout`.
    pub fn ok_within(&self, args: &[&str], timeout: Duration) -> String {
        let out = run_timeout(self.berth(args), timeout);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        text(&out.stdout)
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join("containers").join(id)
    }

    /// The monitor's `state.json`.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let path = self.container_dir(id).join("state.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).expect("state.json parses")
    }

    pub fn state_pid(&self, id: &str, key: &str) -> i32 {
        self.state(id)[key].as_i64().unwrap_or(0) as i32
    }

    /// `inspect` of one container.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect prints JSON");
        v[0].clone()
    }

    /// `ps -a --format '{{.Names}} {{.Status}}'` as (name, status) pairs.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    }

    pub fn status_of(&self, name: &str) -> String {
        self.statuses()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("{name} not in ps -a: {:?}", self.statuses()))
    }

    /// Full IDs of every container directory in the store.
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.path.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| is_hex(n, 64))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts nothing is left of a removed container: no directory, no runtime directory,
    /// no cgroup, and none of `pids` alive.
    pub fn assert_gone(&self, id: &str, pids: &[i32]) {
        assert!(
            !self.container_dir(id).exists(),
            "container directory of {id} is still there"
        );
        assert!(
            !Path::new("/run/berth").join(id).exists(),
            "runtime directory of {id} is still there"
        );
        for pid in pids {
            assert!(!alive(*pid), "process {pid} of {id} is still alive");
        }
        let left: Vec<_> = cgroup_dirs(id)
            .into_iter()
            .filter(|d| !cgroup_procs(d).is_empty())
            .collect();
        assert!(left.is_empty(), "processes left in cgroups {left:?}");
        let dirs = cgroup_dirs(id);
        assert!(dirs.is_empty(), "cgroups of {id} left behind: {dirs:?}");
    }
}

/// `mount ARGS… PATH`, which must succeed.
fn mount(args: &[&str], path: &Path) {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(path)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount {args:?} {}: {}",
        path.display(),
        describe(&out)
    );
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.tmpfs {
            // Writable again, so that berth can remove what the test left.
            let _ = std::process::Command::new("mount")
                .args(["-o", "remount,rw"])
                .arg(&self.path)
                .status();
        }
        self.remove_containers();
        if self.tmpfs {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

impl Lab {
    fn remove_containers(&mut self) {
        let mut ids = self.container_ids();
        for id in self.started.borrow().iter() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        for id in ids {
            let state = std::fs::read(self.container_dir(&id).join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            if self.container_dir(&id).exists() {
                let _ = run_timeout_quiet(self.berth(&["rm", "-f", &id]), Duration::from_secs(30));
            }
            let runtime_dir = Path::new("/run/berth").join(&id);
            if !self.container_dir(&id).exists()
                && cgroup_dirs(&id).is_empty()
                && !runtime_dir.exists()
            {
                continue;
            }
            // Reported so that leaks show up in the test output (`--nocapture`).
            eprintln!(
                "LEAK {id}: dir {} cgroups {:?} runtime dir {}",
                self.container_dir(&id).exists(),
                cgroup_dirs(&id),
                runtime_dir.exists()
            );
            // berth could not clean up: kill what is left so nothing outlives the test run.
            if let Some(state) = state {
                for (pid, start) in [("pid", "pid_start"), ("monitor_pid", "monitor_start")] {
                    let pid = state[pid].as_i64().unwrap_or(0) as i32;
                    let start = state[start].as_u64().unwrap_or(0);
                    if pid > 0 && start_time(pid) == Some(start) {
                        // SAFETY: kill(2) of a process this test started (start time checked).
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            for dir in cgroup_dirs(&id) {
                for pid in cgroup_procs(&dir) {
                    // SAFETY: kill(2) of a process in this test's container cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(100));
                let _ = std::fs::remove_dir(&dir);
            }
            let _ = std::fs::remove_dir_all(Path::new("/run/berth").join(&id));
        }
    }
}

/// `berth top ARGS…` with a PATH that has no `ps` in it: berth reads /proc itself (a
/// minimal host has no procps). Its output, and the exit code.
pub fn top_without_ps(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["top"];
    all.extend_from_slice(args);
    let out = lab
        .berth(&all)
        .env("PATH", "/nonexistent")
        .output()
        .expect("run berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Host pids of the container's processes, from `berth top`'s PID column.
pub fn top_pids(lab: &Lab, name: &str) -> Vec<i32> {
    let (code, out, err) = top_without_ps(lab, &[name]);
    assert_eq!(code, 0, "top {name}: {err}");
    let mut lines = out.lines();
    let header = lines.next().expect("top prints a header");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or_else(|| panic!("no PID column in top: {out}"));
    lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect()
}
