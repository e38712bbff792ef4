//! Host networking for the tests that start bridged containers (network.rs,
//! security_runtime.rs): one test at a time across processes (an flock), a snapshot of what
//! berth may change on the host to compare before and after, plain HTTP GETs, and a second
//! network namespace standing for another machine on the LAN.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::sys::FileLock;

use super::{ANON, TestRoot, fixtures};

pub fn net_lock() -> FileLock {
    FileLock::exclusive(std::path::Path::new("/run/berth-net-tests.lock")).unwrap()
}

pub fn nginx() -> String {
    format!("{ANON}/nginx")
}

pub fn busybox() -> String {
    format!("{ANON}/busybox")
}

pub fn setup(name: &str) -> (FileLock, TestRoot) {
    let lock = net_lock();
    fixtures();
    let root = TestRoot::new(name);
    root.ok(&["pull", "-q", &nginx()]);
    root.ok(&["pull", "-q", &busybox()]);
    // The bridge exists from the first bridged container on: create it before any snapshot.
    root.ok(&["run", "--rm", &busybox(), "true"]);
    (lock, root)
}

pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What berth may touch on the host: the bridge and berth's veths (15-character `veth…` names;
/// Docker's are shorter) in `ip -d link` and `ip addr`, routes on the bridge, the `ip berth`
/// nftables table and the FORWARD rules naming the bridge. Scoped so that Docker containers
/// started meanwhile by someone else on this host do not count. Timers are left out.
pub fn snapshot() -> String {
    let ours = |block: &str| {
        let name = block
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .trim_end_matches(':');
        let name = name.split('@').next().unwrap_or("");
        name == "berth0" || (name.starts_with("veth") && name.len() == 15)
    };
    let blocks = |text: String| -> String {
        let mut out = String::new();
        let mut keep = false;
        for line in text.lines() {
            if line.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                keep = ours(line);
            }
            if keep {
                let cleaned: Vec<&str> = line.split_whitespace().collect();
                let mut words = Vec::new();
                let mut skip = false;
                for w in cleaned {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if w.ends_with("_timer") {
                        skip = true;
                        continue;
                    }
                    // The bridge's carrier follows its ports up to a second late (linkwatch):
                    // a leaked port shows as its own link anyway.
                    if matches!(w, "linkdown" | "UP" | "DOWN" | "state") {
                        continue;
                    }
                    let w = w.trim_start_matches("<NO-CARRIER,");
                    let w = w.strip_prefix('<').unwrap_or(w);
                    words.push(w);
                }
                out += &words.join(" ");
                out.push('\n');
            }
        }
        out
    };
    let mut s = String::new();
    s += &blocks(sh(&["ip", "-d", "link"]));
    s += &blocks(sh(&["ip", "addr"]));
    for line in sh(&["ip", "route"]).lines() {
        if line.contains("berth0") {
            s += &line.replace(" linkdown", "");
            s.push('\n');
        }
    }
    s += &sh(&["nft", "-s", "list", "table", "ip", "berth"]);
    for line in sh(&["iptables", "-w", "-S", "FORWARD"]).lines() {
        if line.contains("berth0") {
            s += line;
            s.push('\n');
        }
    }
    s
}

/// Waits (the kernel reports a bridge's carrier change up to a second late) until the host
/// looks like `before` again.
pub fn assert_restored(before: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = snapshot();
        if now == before {
            return;
        }
        if Instant::now() > deadline {
            let diff: Vec<String> = now
                .lines()
                .filter(|l| !before.lines().any(|b| b == *l))
                .map(|l| format!("+ {l}"))
                .chain(
                    before
                        .lines()
                        .filter(|l| !now.lines().any(|b| b == *l))
                        .map(|l| format!("- {l}")),
                )
                .collect();
            panic!("{what}: host networking not restored:\n{}", diff.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn endpoints_left() -> Vec<String> {
    std::fs::read_dir("/run/berth/net/endpoints")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// nginx may take a moment to listen after `run -d` returns.
pub fn http_get_retry(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match http_get(addr) {
            Ok(body) if body.starts_with("HTTP/1.1 200") => return body,
            other => {
                if Instant::now() > deadline {
                    panic!("GET http://{addr}/: {other:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A second network namespace connected to the host by a veth pair (10.199.0.1 on the host
/// side); removed when dropped.
pub struct OtherNetns;

impl OtherNetns {
    pub fn new() -> OtherNetns {
        OtherNetns::remove();
        for cmd in [
            "ip netns add berthtest",
            "ip link add bt-host type veth peer name bt-ns netns berthtest",
            "ip addr add 10.199.0.1/24 dev bt-host",
            "ip link set bt-host up",
            "ip -n berthtest addr add 10.199.0.2/24 dev bt-ns",
            "ip -n berthtest link set bt-ns up",
            "ip -n berthtest link set lo up",
            "ip -n berthtest route add default via 10.199.0.1",
        ] {
            let args: Vec<&str> = cmd.split(' ').collect();
            assert!(
                Command::new(args[0])
                    .args(&args[1..])
                    .status()
                    .unwrap()
                    .success(),
                "{cmd}"
            );
        }
        OtherNetns
    }

    /// Removes the namespace and the host end of the veth pair, if there.
    pub fn remove() {
        let _ = Command::new("ip")
            .args(["netns", "del", "berthtest"])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", "bt-host"])
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Whether an HTTP GET from inside the namespace succeeds.
    pub fn get(&self, url: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                "berthtest",
                "curl",
                "-s",
                "-m",
                "3",
                "-o",
                "/dev/null",
                url,
            ])
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for OtherNetns {
    fn drop(&mut self) {
        OtherNetns::remove();
    }
}
