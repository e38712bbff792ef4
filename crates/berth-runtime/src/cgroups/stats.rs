//! A container's resource usage read from its cgroup (cpu, memory, pids, block I/O), on v1
//! and v2, in the shape and units runc's `events` reports (runc's `types.Stats`, which
//! containerd and other callers decode): nanoseconds of CPU, bytes, v1's names for v2's
//! counters. Zero-valued fields runc leaves out are left out here too.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    #[serde(skip_serializing_if = "Throttling::is_zero")]
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

impl Throttling {
    fn is_zero(&self) -> bool {
        *self == Throttling::default()
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct MemoryStats {
    /// Page cache bytes (v1 `cache`, v2 `file`).
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(skip_serializing_if = "MemoryEntry::is_zero")]
    pub usage: MemoryEntry,
    /// Memory and swap together, as v1 counts them (v2's swap is added to its memory).
    #[serde(skip_serializing_if = "MemoryEntry::is_zero")]
    pub swap: MemoryEntry,
    #[serde(skip_serializing_if = "MemoryEntry::is_zero")]
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP", skip_serializing_if = "MemoryEntry::is_zero")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat`, every key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Bytes; an unlimited limit is u64::MAX, as runc reports it.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

impl MemoryEntry {
    fn is_zero(&self) -> bool {
        *self == MemoryEntry::default()
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0: no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BlkioStats {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// A cgroup file's single number; "max" is u64::MAX; a missing file or junk is `None`.
fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    let text = fs::read_to_string(dir.join(file)).ok()?;
    let t = text.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

/// A flat-keyed file (`key value` lines) as a map.
fn read_flat(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// v1: each controller's directory of the container, as `dir(controller)` finds it.
pub(crate) fn v1(dir: &dyn Fn(&str) -> Option<std::path::PathBuf>) -> Stats {
    let mut s = Stats::default();
    if let Some(d) = dir("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = read_u64(&d, "cpuacct.usage").unwrap_or(0);
        let stat = read_flat(&d, "cpuacct.stat");
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / berth_sys::clock_ticks();
        u.user = ns(stat.get("user").copied().unwrap_or(0));
        u.kernel = ns(stat.get("system").copied().unwrap_or(0));
        u.percpu = fs::read_to_string(d.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // "cpu user system" then one line per CPU.
        let all = fs::read_to_string(d.join("cpuacct.usage_all")).unwrap_or_default();
        for line in all.lines().skip(1) {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if let [_, user, system, ..] = f[..] {
                u.percpu_user.push(user);
                u.percpu_kernel.push(system);
            }
        }
    }
    if let Some(d) = dir("cpu") {
        let stat = read_flat(&d, "cpu.stat");
        let t = &mut s.cpu.throttling;
        t.periods = stat.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = dir("memory") {
        let m = &mut s.memory;
        m.raw = read_flat(&d, "memory.stat");
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        let entry = |prefix: &str| MemoryEntry {
            limit: read_u64(&d, &format!("{prefix}.limit_in_bytes")).unwrap_or(0),
            usage: read_u64(&d, &format!("{prefix}.usage_in_bytes")).unwrap_or(0),
            max: read_u64(&d, &format!("{prefix}.max_usage_in_bytes")).unwrap_or(0),
            failcnt: read_u64(&d, &format!("{prefix}.failcnt")).unwrap_or(0),
        };
        m.usage = entry("memory");
        m.swap = entry("memory.memsw");
        m.kernel = entry("memory.kmem");
        m.kernel_tcp = entry("memory.kmem.tcp");
    }
    if let Some(d) = dir("pids") {
        s.pids = pids(&d);
    }
    if let Some(d) = dir("blkio") {
        s.blkio = v1_blkio(&d);
    }
    s
}

fn pids(d: &Path) -> PidsStats {
    let current = match read_u64(d, "pids.current") {
        Some(c) => c,
        // v2 without the pids controller enabled: count the processes.
        None => fs::read_to_string(d.join("cgroup.procs")).map_or(0, |t| t.lines().count() as u64),
    };
    PidsStats {
        current,
        limit: read_u64(d, "pids.max")
            .filter(|l| *l != u64::MAX)
            .unwrap_or(0),
    }
}

/// One v1 blkio file: `MAJ:MIN [OP] VALUE` lines (the `Total` line skipped).
fn blkio_file(d: &Path, file: &str) -> Option<Vec<BlkioEntry>> {
    let text = fs::read_to_string(d.join(file)).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split([' ', ':']).filter(|s| !s.is_empty()).collect();
        let (major, minor, op, value) = match f[..] {
            [maj, min, v] => (maj, min, "", v),
            [maj, min, op, v] => (maj, min, op, v),
            _ => continue,
        };
        let (Ok(major), Ok(minor), Ok(value)) = (major.parse(), minor.parse(), value.parse())
        else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    Some(out)
}

/// The first scheduler's statistics the kernel offers, as runc reads them: CFQ's, BFQ's,
/// then the throttling layer's (recursive, then this level's), which every kernel has.
fn v1_blkio(d: &Path) -> BlkioStats {
    let mut s = BlkioStats::default();
    for prefix in ["blkio.", "blkio.bfq."] {
        let Some(bytes) =
            blkio_file(d, &format!("{prefix}io_service_bytes_recursive")).filter(|v| !v.is_empty())
        else {
            continue;
        };
        let read = |name: &str| blkio_file(d, &format!("{prefix}{name}")).unwrap_or_default();
        s.io_service_bytes_recursive = bytes;
        s.io_serviced_recursive = read("io_serviced_recursive");
        s.io_queued_recursive = read("io_queued_recursive");
        s.io_service_time_recursive = read("io_service_time_recursive");
        s.io_wait_time_recursive = read("io_wait_time_recursive");
        s.io_merged_recursive = read("io_merged_recursive");
        s.io_time_recursive = read("time_recursive");
        s.sectors_recursive = read("sectors_recursive");
        return s;
    }
    for suffix in ["_recursive", ""] {
        if let Some(bytes) = blkio_file(d, &format!("blkio.throttle.io_service_bytes{suffix}")) {
            s.io_service_bytes_recursive = bytes;
            s.io_serviced_recursive =
                blkio_file(d, &format!("blkio.throttle.io_serviced{suffix}")).unwrap_or_default();
            return s;
        }
    }
    s
}

/// v2: the container's directory in the unified hierarchy.
pub(crate) fn v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = read_flat(d, "cpu.stat");
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    let m = &mut s.memory;
    m.raw = read_flat(d, "memory.stat");
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    if let Some(usage) = read_u64(d, "memory.current") {
        m.usage = MemoryEntry {
            limit: read_u64(d, "memory.max").unwrap_or(u64::MAX),
            usage,
            max: read_u64(d, "memory.peak").unwrap_or(0),
            failcnt: 0,
        };
        // v1 counted swap with memory: so does runc's report of v2.
        if let Some(swap) = read_u64(d, "memory.swap.current") {
            let limit = read_u64(d, "memory.swap.max").unwrap_or(u64::MAX);
            m.swap = MemoryEntry {
                limit: if limit == u64::MAX {
                    limit
                } else {
                    limit.saturating_add(m.usage.limit)
                },
                usage: swap.saturating_add(usage),
                max: 0,
                failcnt: 0,
            };
        }
    }
    s.pids = pids(d);
    // `MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...`, in v1's names and tables.
    let io = fs::read_to_string(d.join("io.stat")).unwrap_or_default();
    for line in io.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields
            .next()
            .and_then(|dev| dev.split_once(':'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (table, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-stats-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            fs::write(d.join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn v2_files_in_v1_terms() {
        let d = dir_with(&[
            (
                "cpu.stat",
                "usage_usec 150\nuser_usec 100\nsystem_usec 50\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
            ),
            ("memory.stat", "anon 4096\nfile 8192\n"),
            ("memory.current", "12288\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "max\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
            (
                "io.stat",
                "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
        ]);
        let s = v2(&d);
        assert_eq!(s.cpu.usage.total, 150_000);
        assert_eq!(s.cpu.usage.user, 100_000);
        assert_eq!(s.cpu.throttling.throttled_time, 7_000);
        assert_eq!(s.memory.cache, 8192);
        assert_eq!(s.memory.usage.usage, 12288);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.swap.usage, 12288);
        assert_eq!(
            s.pids,
            PidsStats {
                current: 2,
                limit: 0
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
        assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 1);
        assert!(
            json["memory"].get("kernel").is_none(),
            "zero entries are left out"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn v1_blkio_falls_back_to_the_throttle_files() {
        let d = dir_with(&[
            ("blkio.io_service_bytes_recursive", "Total 0\n"),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\nTotal 1\n",
            ),
        ]);
        let s = v1_blkio(&d);
        assert_eq!(
            s.io_service_bytes_recursive[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(s.io_serviced_recursive.len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
