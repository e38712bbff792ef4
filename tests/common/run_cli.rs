//! `berth run --rm …` on a fresh store with a fixture image pulled, for the run and runtime
//! security tests (run.rs, security_runtime.rs).

use std::collections::BTreeSet;
use std::process::Output;

use super::{BUSYBOX, TestRoot, fixtures};

/// Docker's 14 default capabilities.
pub const DEFAULT_CAPS: &str = "00000000a80425fb";

/// A fresh store with `image` pulled.
pub fn root_with(name: &str, image: &str) -> TestRoot {
    fixtures();
    let root = TestRoot::new(&format!("run-{name}"));
    root.ok(&["pull", "-q", image]);
    root
}

/// `berth run --rm ARGS…` expecting success; its stdout.
pub fn run_ok(root: &TestRoot, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    root.ok(&all)
}

/// `berth run --rm FLAGS… busybox sh -c SCRIPT` expecting success; its stdout.
pub fn sh_ok(root: &TestRoot, flags: &[&str], script: &str) -> String {
    let mut all = flags.to_vec();
    all.extend_from_slice(&[BUSYBOX, "sh", "-c", script]);
    run_ok(root, &all)
}

/// `berth run --rm busybox sh -c SCRIPT`, whatever the outcome.
pub fn sh_out(root: &TestRoot, script: &str) -> Output {
    run_out(root, &[BUSYBOX, "sh", "-c", script])
}

/// `berth run --rm ARGS…`, whatever the outcome.
pub fn run_out(root: &TestRoot, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    root.run(&all)
}

/// The value of `key:` in a /proc/PID/status text.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"))
        .trim()
}

pub fn container_status(root: &TestRoot, flags: &[&str]) -> String {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend_from_slice(&[BUSYBOX, "cat", "/proc/self/status"]);
    run_ok(root, &args)
}

pub fn host_mountinfo() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        // Mount IDs of unrelated mounts can change between reads; compare the rest. Docker
        // (running on this machine, used by other tests) churns its own mounts.
        .map(|l| l.split_once(' ').map(|x| x.1).unwrap_or(l).to_string())
        .filter(|l| !l.contains("docker") && !l.contains("/run/netns"))
        .collect()
}
