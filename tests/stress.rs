//! Stress and crash test (issue 22): several workers run random berth commands (pull, run -d,
//! run --rm, exec, stop, start, rm, rmi, prune, commit, ps, images) against one store at once,
//! while a killer thread kill -9s a random berth process of this store (a CLI command, a
//! container's monitor) every second or two. Commands may fail — they were killed, or raced
//! another — but none may panic or hang. Afterwards an invariant checker looks at what is left:
//! every container can be started or removed, every image's records, layers and blobs are
//! present and verified, no layer is left without an owner after a prune, and nothing —
//! mount, cgroup, veth, endpoint, nft element, process, temp data — is left that belongs to
//! nothing.
//!
//! `BERTH_STRESS_SEED` replays a run (the seed is printed), `BERTH_STRESS_SECONDS` sets how
//! long the random loop runs (default 75 s, for CI), `BERTH_STRESS_WORKERS` how many workers
//! (default 3).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lab::Lab;
use common::output::{describe, is_hex, text};
use common::procs::{cgroup_dirs, cgroup_procs};
use common::wait::{run_timeout_quiet, wait_until};
use common::{ANON, BUSYBOX};
use sha2::Digest as _;

/// A command that takes longer than this hangs, which is a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// splitmix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The images workers pull and run: shared layers (busybox's is in multilayer), Docker and
/// OCI manifests, an index.
fn remote_images() -> Vec<String> {
    vec![
        BUSYBOX.to_string(),
        format!("{ANON}/multilayer:latest"),
        format!("{ANON}/multilayer:oci"),
        format!("{ANON}/multiarch:latest"),
    ]
}

/// What the workers and the killer share.
struct Shared {
    root: PathBuf,
    docker_config: PathBuf,
    /// Set when the random loop is over.
    stop: AtomicBool,
    /// Container names created by workers (some may be gone).
    names: Mutex<Vec<String>>,
    /// Image references workers may run, remove or commit to.
    images: Mutex<Vec<String>>,
    /// Every container ID ever seen (run -d output, the containers directory).
    ids: Mutex<BTreeSet<String>>,
    /// Host ports published by bridge containers.
    ports: Mutex<BTreeSet<u16>>,
    /// Panics, hangs and other broken promises, with the command that broke them.
    failures: Mutex<Vec<String>>,
    /// Per operation: (succeeded, failed, killed).
    tally: Mutex<BTreeMap<&'static str, (u32, u32, u32)>>,
    /// The first line of each distinct error, counted, for the report.
    errors: Mutex<BTreeMap<String, u32>>,
    /// What the killer killed, by subcommand.
    kills: Mutex<BTreeMap<String, u32>>,
    /// Marks every container process (`-e`), to find leftovers by their environment.
    marker: String,
}

impl Shared {
    fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.env("DOCKER_CONFIG", &self.docker_config);
        cmd
    }

    /// Runs one command, checking the promises every command keeps however it ends: no
    /// panic, no hang. Returns its output unless it hung.
    fn run(&self, op: &'static str, args: &[&str]) -> Option<Output> {
        let started = Instant::now();
        let result = run_timeout_quiet(self.berth(args), COMMAND_TIMEOUT);
        let out = match result {
            Ok(out) => out,
            Err(msg) => {
                self.fail(format!("HANG: berth {args:?}: {msg}"));
                return None;
            }
        };
        let stderr = text(&out.stderr);
        if out.status.code() == Some(101) || stderr.contains("panicked") {
            self.fail(format!(
                "PANIC: berth {args:?} after {:?}: {}",
                started.elapsed(),
                describe(&out)
            ));
        }
        let mut tally = self.tally.lock().unwrap();
        let entry = tally.entry(op).or_default();
        match out.status.code() {
            Some(0) => entry.0 += 1,
            Some(_) => {
                entry.1 += 1;
                let line = stderr.lines().next().unwrap_or("").to_string();
                *self
                    .errors
                    .lock()
                    .unwrap()
                    .entry(format!("{op}: {}", normalise(&line)))
                    .or_default() += 1;
            }
            None => entry.2 += 1,
        }
        Some(out)
    }

    fn fail(&self, msg: String) {
        eprintln!("FAILURE {msg}");
        self.failures.lock().unwrap().push(msg);
    }

    fn note_ids(&self, out: &str) {
        let mut ids = self.ids.lock().unwrap();
        for word in out.split_whitespace() {
            if is_hex(word, 64) {
                ids.insert(word.to_string());
            }
        }
    }
}

/// An error line with IDs, numbers and names blurred, so that alike errors count together.
fn normalise(line: &str) -> String {
    let mut s: String = line
        .split_whitespace()
        .map(|w| {
            if w.chars().filter(|c| c.is_ascii_hexdigit()).count() >= 12
                || w.starts_with("s") && w.contains('-') && w.len() < 12
            {
                "X"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    s.truncate(140);
    s
}

fn worker(shared: &Shared, index: usize, seed: u64) {
    let mut rng = Rng(seed ^ (index as u64).wrapping_mul(0x1234_5678_9abc_def1));
    let mut serial = 0u32;
    let remotes = remote_images();
    while !shared.stop.load(Ordering::SeqCst) {
        serial += 1;
        let name = {
            let names = shared.names.lock().unwrap();
            rng.pick(&names).cloned()
        };
        let image = {
            let images = shared.images.lock().unwrap();
            rng.pick(&images).cloned()
        };
        let image = image.unwrap_or_else(|| BUSYBOX.to_string());
        let roll = rng.below(100);
        match roll {
            0..=9 => {
                let remote = rng.pick(&remotes).unwrap().clone();
                if let Some(out) = shared.run("pull", &["pull", "-q", &remote])
                    && out.status.success()
                {
                    let mut images = shared.images.lock().unwrap();
                    if !images.contains(&remote) {
                        images.push(remote);
                    }
                }
            }
            10..=29 => {
                let new = format!("s{index}-{serial}");
                let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into()];
                args.push(new.clone());
                args.extend(["-e".into(), format!("STRESS_MARK={}", shared.marker)]);
                if rng.chance(20) {
                    args.push("--network".into());
                    args.push("bridge".into());
                    if rng.chance(50) {
                        let port = 47000 + rng.below(1000) as u16;
                        shared.ports.lock().unwrap().insert(port);
                        args.push("-p".into());
                        args.push(format!("127.0.0.1:{port}:80"));
                    }
                } else {
                    args.push("--network".into());
                    args.push("none".into());
                }
                if rng.chance(15) {
                    args.push("--rm".into());
                }
                args.push(image.clone());
                args.extend(["sleep".into(), (1000 + serial).to_string()]);
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                shared.names.lock().unwrap().push(new);
                if let Some(out) = shared.run("run -d", &argv) {
                    shared.note_ids(&text(&out.stdout));
                }
            }
            30..=34 => {
                shared.run(
                    "run --rm",
                    &[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "-e",
                        &format!("STRESS_MARK={}", shared.marker),
                        &image,
                        "sh",
                        "-c",
                        "echo hello; ls / >/dev/null",
                    ],
                );
            }
            35..=44 => {
                if let Some(name) = name {
                    shared.run("exec", &["exec", &name, "sh", "-c", "echo hi; sleep 0.2"]);
                }
            }
            45..=52 => {
                if let Some(name) = name {
                    shared.run("stop", &["stop", "-t", "1", &name]);
                }
            }
            53..=58 => {
                if let Some(name) = name {
                    shared.run("start", &["start", &name]);
                }
            }
            59..=66 => {
                if let Some(name) = name {
                    let force = rng.chance(70);
                    let args: &[&str] = if force {
                        &["rm", "-f", &name]
                    } else {
                        &["rm", &name]
                    };
                    if let Some(out) = shared.run("rm", args)
                        && out.status.success()
                    {
                        shared.names.lock().unwrap().retain(|n| *n != name);
                    }
                }
            }
            67..=72 => {
                let force = rng.chance(40);
                let args: &[&str] = if force {
                    &["rmi", "-f", &image]
                } else {
                    &["rmi", &image]
                };
                shared.run("rmi", args);
            }
            73..=76 => {
                shared.run("container prune", &["container", "prune", "-f"]);
            }
            77..=80 => {
                if rng.chance(30) {
                    shared.run("image prune -a", &["image", "prune", "-a", "-f"]);
                } else {
                    shared.run("image prune", &["image", "prune", "-f"]);
                }
            }
            81..=88 => {
                if let Some(name) = name {
                    // A few tags only, so that tags move and leave dangling images.
                    let tag = format!("stress/commit:{}", rng.below(3));
                    if let Some(out) = shared.run("commit", &["commit", &name, &tag])
                        && out.status.success()
                    {
                        let mut images = shared.images.lock().unwrap();
                        if !images.contains(&tag) {
                            images.push(tag);
                        }
                    }
                }
            }
            89..=94 => {
                if let Some(out) = shared.run("ps", &["ps", "-a", "-q", "--no-trunc"]) {
                    shared.note_ids(&text(&out.stdout));
                }
            }
            _ => {
                shared.run("images", &["images"]);
            }
        }
    }
}

/// This store's berth processes: pid → its arguments after `--root R`.
fn berth_processes(root: &Path) -> Vec<(i32, String)> {
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_berth")).unwrap();
    let root = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(entry.path().join("exe")).ok().as_ref() != Some(&exe) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.contains(&root) {
            let rest = args
                .iter()
                .skip_while(|a| **a != root)
                .skip(1)
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            out.push((pid, rest));
        }
    }
    out
}

/// Whether `pid` is a container's monitor rather than the command that started it: the
/// monitor is forked from `run`/`start` and leads a session of its own.
fn is_session_leader(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    // state ppid pgrp session …
    fields.get(3).and_then(|s| s.parse::<i32>().ok()) == Some(pid)
}

fn killer(shared: &Shared, seed: u64) {
    let mut rng = Rng(seed ^ 0xdead_beef);
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(500 + rng.below(2000) as u64));
        if let Ok(rd) = std::fs::read_dir(shared.root.join("containers")) {
            let mut ids = shared.ids.lock().unwrap();
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if is_hex(&n, 64) {
                    ids.insert(n);
                }
            }
        }
        // Monitors live as long as their containers and would draw most kills: a short-lived
        // command is picked three times in four when one runs.
        let (monitors, commands): (Vec<_>, Vec<_>) = berth_processes(&shared.root)
            .into_iter()
            .partition(|(pid, _)| is_session_leader(*pid));
        let pool = if commands.is_empty() || (!monitors.is_empty() && rng.chance(25)) {
            &monitors
        } else {
            &commands
        };
        let Some((pid, what)) = rng.pick(pool).cloned() else {
            continue;
        };
        let kind = if is_session_leader(pid) {
            format!("{what} (monitor)")
        } else {
            what
        };
        // SAFETY: kill(2) of a berth process of this test's own store, found just now.
        if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            *shared.kills.lock().unwrap().entry(kind).or_default() += 1;
        }
    }
}

fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The image records in the store, by config hex.
fn image_records(root: &Path) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for name in dir_names(&root.join("images")) {
        let Some(hex) = name.strip_suffix(".json") else {
            continue;
        };
        let bytes = std::fs::read(root.join("images").join(&name)).unwrap();
        let record: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("image record {name} does not parse: {e}"));
        out.insert(hex.to_string(), record);
    }
    out
}

/// Every blob is what its name says; every image record's config, manifest and layers are
/// there; every tag names an image that is there; every layer has an owner (an image or a
/// container). Returns the problems found.
fn check_images(shared: &Shared) -> Vec<String> {
    let root = &shared.root;
    let mut problems = Vec::new();
    let blobs = root.join("blobs/sha256");
    for name in dir_names(&blobs) {
        if name.starts_with(".tmp-") {
            problems.push(format!("blob temp file left: {name}"));
            continue;
        }
        let actual = sha256_file(&blobs.join(&name));
        if actual != name {
            problems.push(format!("blob {name} hashes to {actual}"));
        }
    }
    let records = image_records(root);
    let mut owned_layers = BTreeSet::new();
    for (hex, record) in &records {
        if record["id"].as_str().map(hex_of) != Some(hex.as_str()) {
            problems.push(format!("image record {hex} has id {}", record["id"]));
        }
        if !blobs.join(hex).is_file() {
            problems.push(format!("image {hex}: config blob missing"));
        }
        if let Some(manifest) = record["manifest"].as_str()
            && !blobs.join(hex_of(manifest)).is_file()
        {
            problems.push(format!("image {hex}: manifest blob {manifest} missing"));
        }
        for layer in record["layers"].as_array().into_iter().flatten() {
            let diff_id = hex_of(layer["diff_id"].as_str().unwrap_or("")).to_string();
            let dir = root.join("layers").join(&diff_id);
            if !dir.join("diff").is_dir() || !dir.join("layer.json").is_file() {
                problems.push(format!(
                    "image {hex}: layer {diff_id} missing or incomplete"
                ));
            }
            owned_layers.insert(diff_id);
        }
    }
    // Layers a container's overlay still uses (an image removed with rmi -f keeps them).
    for id in dir_names(&root.join("containers")) {
        let Ok(bytes) = std::fs::read(root.join("containers").join(&id).join("container.json"))
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() == 64 {
                owned_layers.insert(word.to_string());
            }
        }
    }
    for layer in dir_names(&root.join("layers")) {
        if !owned_layers.contains(&layer) {
            problems.push(format!("layer {layer} belongs to no image or container"));
        }
    }
    let repositories: serde_json::Value = std::fs::read(root.join("repositories.json"))
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("repositories.json parses"))
        .unwrap_or_default();
    for (tag, id) in repositories["tags"].as_object().into_iter().flatten() {
        let id = hex_of(id.as_str().unwrap_or(""));
        if !records.contains_key(id) {
            problems.push(format!("tag {tag} names missing image {id}"));
        }
    }
    problems
}

/// Everything of this store's that the host still holds: mounts, cgroups, veths, network
/// endpoints, published ports, processes, temp data.
fn check_host(shared: &Shared) -> Vec<String> {
    let root = shared.root.to_string_lossy().into_owned();
    let mut problems = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        if line.contains(&root) {
            problems.push(format!("mount left: {line}"));
        }
    }
    let ids = shared.ids.lock().unwrap().clone();
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    for id in &ids {
        for dir in cgroup_dirs(id) {
            problems.push(format!(
                "cgroup left: {} (procs {:?})",
                dir.display(),
                cgroup_procs(&dir)
            ));
        }
        if Path::new("/run/berth").join(id).exists() {
            problems.push(format!("runtime directory /run/berth/{id} left"));
        }
        let endpoint = Path::new("/run/berth/net/endpoints").join(format!("{id}.json"));
        if endpoint.exists() {
            problems.push(format!("network endpoint {} left", endpoint.display()));
        }
        let veth = format!("veth{}", &id[..11]);
        if links.contains(&format!("{veth}@")) || links.contains(&format!("{veth}:")) {
            problems.push(format!("veth {veth} left"));
        }
    }
    let ports = shared.ports.lock().unwrap().clone();
    if !ports.is_empty() {
        let table = Command::new("nft")
            .args(["list", "table", "ip", "berth"])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default();
        for port in ports {
            if table.contains(&format!("tcp . {port} :")) {
                problems.push(format!("nft element for published port {port} left"));
            }
        }
    }
    for (pid, what) in berth_processes(&shared.root) {
        problems.push(format!("berth process {pid} ({what}) left"));
    }
    let marker = format!("STRESS_MARK={}", shared.marker);
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry.file_name().to_string_lossy().parse::<i32>().is_err() {
            continue;
        }
        if let Ok(environ) = std::fs::read(entry.path().join("environ"))
            && environ.split(|b| *b == 0).any(|v| v == marker.as_bytes())
        {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            problems.push(format!(
                "container process {} ({}) left",
                entry.file_name().to_string_lossy(),
                text(&cmdline).replace('\0', " ")
            ));
        }
    }
    let tmp = dir_names(&shared.root.join("tmp"));
    if !tmp.is_empty() {
        problems.push(format!("temp data left in tmp/: {tmp:?}"));
    }
    problems
}

/// The layer directories a container's record names that are gone.
fn missing_layers(root: &Path, id: &str) -> Vec<String> {
    let Ok(bytes) = std::fs::read(root.join("containers").join(id).join("container.json")) else {
        return Vec::new();
    };
    let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    record["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .filter(|l| !Path::new(l).is_dir())
        .map(str::to_string)
        .collect()
}

/// Runs a command of the checker, which must succeed.
fn must(shared: &Shared, args: &[&str]) -> String {
    let out = run_timeout_quiet(shared.berth(args), COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("HANG in the checker: {e}"));
    if !out.status.success() {
        shared.fail(format!("checker: berth {args:?}: {}", describe(&out)));
    }
    text(&out.stdout)
}

#[test]
fn random_operations_with_kill_9_leave_a_consistent_store() {
    let seed = env_u64("BERTH_STRESS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let seconds = env_u64("BERTH_STRESS_SECONDS").unwrap_or(75);
    let workers = env_u64("BERTH_STRESS_WORKERS").unwrap_or(3) as usize;
    eprintln!(
        "stress: BERTH_STRESS_SEED={seed} BERTH_STRESS_SECONDS={seconds} BERTH_STRESS_WORKERS={workers}"
    );
    // Which operation a worker picks is seeded; how they interleave and what the killer hits
    // depends on timing, so a seed replays the mix, not the exact run.
    let lab = Lab::with("stress", &[BUSYBOX]);
    let shared = Arc::new(Shared {
        root: lab.path.clone(),
        docker_config: lab.docker_config(),
        stop: AtomicBool::new(false),
        names: Mutex::default(),
        images: Mutex::new(vec![BUSYBOX.to_string()]),
        ids: Mutex::default(),
        ports: Mutex::default(),
        failures: Mutex::default(),
        tally: Mutex::default(),
        errors: Mutex::default(),
        kills: Mutex::default(),
        marker: format!("{}-{seed}", std::process::id()),
    });

    let deadline = Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|s| {
        let killer_handle = s.spawn(|| killer(&shared, seed));
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let shared = &shared;
                s.spawn(move || worker(shared, i, seed))
            })
            .collect();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        shared.stop.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().expect("worker thread");
        }
        killer_handle.join().expect("killer thread");
    });

    eprintln!("stress: operations (ok, failed, killed):");
    for (op, (ok, failed, killed)) in shared.tally.lock().unwrap().iter() {
        eprintln!("  {op:16} {ok:5} {failed:5} {killed:5}");
    }
    eprintln!("stress: kills: {:?}", shared.kills.lock().unwrap());
    eprintln!("stress: errors:");
    for (line, n) in shared.errors.lock().unwrap().iter() {
        eprintln!("  {n:4} {line}");
    }

    // --- The checker. ---------------------------------------------------------------------
    // Every container is running, can be started, or at least removed.
    let listed = must(&shared, &["ps", "-a", "-q", "--no-trunc"]);
    shared.note_ids(&listed);
    let mut unstartable = Vec::new();
    for id in listed.split_whitespace() {
        let out = run_timeout_quiet(shared.berth(&["start", id]), COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("HANG in the checker: {e}"));
        if !out.status.success() {
            // A container whose layers are gone was created racing an rmi (fixed in create,
            // see create_racing_rmi_gets_no_container_without_layers).
            let missing = missing_layers(&shared.root, id);
            unstartable.push(format!(
                "{id}: {} (layers missing: {missing:?})",
                text(&out.stderr).trim()
            ));
        }
    }
    for line in &unstartable {
        shared.fail(format!("container cannot be started: {line}"));
    }
    for id in listed.split_whitespace() {
        must(&shared, &["rm", "-f", id]);
    }
    must(&shared, &["container", "prune", "-f"]);
    let left = must(&shared, &["ps", "-a", "-q"]);
    if !left.trim().is_empty() {
        shared.fail(format!("containers left after rm -f of all: {left}"));
    }
    let dirs: Vec<_> = dir_names(&shared.root.join("containers"))
        .into_iter()
        .filter(|n| is_hex(n, 64) || n.starts_with(".tmp-"))
        .collect();
    if !dirs.is_empty() {
        shared.fail(format!("container directories left: {dirs:?}"));
    }

    // Dangling images go; what stays is whole, and every layer has an owner.
    must(&shared, &["image", "prune", "-f"]);
    for problem in check_images(&shared) {
        shared.fail(format!("after image prune: {problem}"));
    }
    // Every image left runs.
    let tagged = must(&shared, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for image in tagged.lines().filter(|l| !l.contains("<none>")) {
        let out = must(
            &shared,
            &["run", "--rm", "--network", "none", image, "echo", "ok"],
        );
        if out.trim() != "ok" {
            shared.fail(format!("run {image} printed {out:?}"));
        }
        must(&shared, &["image", "inspect", image]);
    }

    // Everything goes with prune -a: no image, layer or blob is left that nothing owns.
    must(&shared, &["image", "prune", "-a", "-f"]);
    for problem in check_images(&shared) {
        shared.fail(format!("after image prune -a: {problem}"));
    }
    let images = must(&shared, &["images", "-q"]);
    if !images.trim().is_empty() {
        shared.fail(format!("images left after prune -a: {images}"));
    }
    for (what, dir) in [("layer", "layers"), ("image record", "images")] {
        let left = dir_names(&shared.root.join(dir));
        if !left.is_empty() {
            shared.fail(format!("{what}s left after prune -a: {left:?}"));
        }
    }
    let blobs: Vec<String> = dir_names(&shared.root.join("blobs/sha256"))
        .into_iter()
        .map(|b| {
            let bytes =
                std::fs::read(shared.root.join("blobs/sha256").join(&b)).unwrap_or_default();
            format!(
                "{b} ({} bytes: {:?})",
                bytes.len(),
                text(&bytes[..bytes.len().min(120)])
            )
        })
        .collect();
    if !blobs.is_empty() {
        shared.fail(format!("blobs left after prune -a: {blobs:?}"));
    }

    // Nothing on the host belongs to this store any more. A monitor killed just before the
    // loop ended may still be tearing down: give stragglers a moment.
    wait_until(Duration::from_secs(30), || check_host(&shared).is_empty());
    for problem in check_host(&shared) {
        shared.fail(problem);
    }

    let failures = shared.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "stress (BERTH_STRESS_SEED={seed}) found {} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "stress: seed {seed}: no problems ({} containers seen)",
        shared.ids.lock().unwrap().len()
    );
}

/// Found by the stress test: committing an unchanged container adds the empty layer again, and
/// an image holding one layer twice could not run ("mount overlay: Too many levels of symbolic
/// links", overlayfs refusing a lowerdir twice); and `image prune -a` deleted only the last of a
/// chain of commits, leaving each untagged base (and its layers and blobs) for another prune.
#[test]
fn commits_of_unchanged_containers_run_and_prune_as_a_chain() {
    let lab = Lab::new("stress-commit-chain");
    let none = ["--network", "none"];
    let mut base = BUSYBOX.to_string();
    for i in 0..3 {
        let name = format!("chain{i}");
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend(none);
        args.extend([base.as_str(), "sleep", "1000"]);
        lab.run_d(&args[2..]);
        let tag = format!("stress/chain:{i}");
        lab.ok(&["commit", &name, &tag]);
        base = tag;
    }
    let out = lab.ok(&["run", "--rm", "--network", "none", &base, "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
    for i in 0..3 {
        lab.ok(&["rm", "-f", &format!("chain{i}")]);
    }
    lab.ok(&["image", "prune", "-a", "-f"]);
    let images = lab.ok(&["images", "-a", "-q"]);
    assert!(
        images.trim().is_empty(),
        "images left after prune -a: {images}"
    );
    for dir in ["images", "layers", "blobs/sha256"] {
        let left = dir_names(&lab.path.join(dir));
        assert!(left.is_empty(), "{dir} left after prune -a: {left:?}");
    }
}

/// Found by the stress test: `create` resolved its image, then (the containers lock taken)
/// named the container; an `rmi -f` in between saw no container using the image and deleted its
/// layers, and the new container never started ("mount overlay: No such file or directory").
/// Holding the containers lock here parks `create` exactly there.
#[test]
fn create_racing_rmi_gets_no_container_without_layers() {
    let lab = Lab::new("stress-create-rmi");
    let lock_path = lab.path.join("containers/lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a file this test opened.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut create = lab.berth(&[
        "create",
        "--network",
        "none",
        "--name",
        "racer",
        BUSYBOX,
        "true",
    ]);
    create
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = create.spawn().unwrap();
    // create has laid out its directory under a temporary name (in the store's tmp/) and
    // waits for the lock.
    assert!(
        wait_until(Duration::from_secs(60), || {
            dir_names(&lab.path.join("tmp"))
                .iter()
                .any(|n| n.starts_with(".tmp-"))
        }),
        "create never got to the containers lock"
    );
    // Nothing half-made among the containers: finding such leftovers would take reading the
    // whole store's directory on every command.
    assert!(
        !dir_names(&lab.path.join("containers"))
            .iter()
            .any(|n| n.starts_with(".tmp-")),
        "create laid out its directory among the containers"
    );
    lab.ok(&["rmi", "-f", BUSYBOX]);
    drop(lock);
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        // Whatever was created must run.
        let started = lab.run(&["start", "-a", "racer"]);
        assert!(
            started.status.success(),
            "the container created racing rmi cannot start: {}",
            describe(&started)
        );
    } else {
        assert!(
            text(&out.stderr).contains("No such image"),
            "create racing rmi: {}",
            describe(&out)
        );
        let ps = lab.ok(&["ps", "-a", "-q"]);
        assert!(ps.trim().is_empty(), "a container was left: {ps}");
    }
}
