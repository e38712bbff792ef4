//! Networking: the default bridge, a veth pair and an address per container, published ports
//! (nftables DNAT), and the container's /etc/hosts and /etc/resolv.conf.
//!
//! State lives under `/run/berth/net/` and is host-wide (shared by every `--root`, as the
//! bridge is): one endpoint file per connected container, `endpoints/<id>.json`, holding its
//! init's pid and start time, address, veth name and published ports. The endpoint files *are*
//! the IPAM leases: an address is taken when some live endpoint holds it. Every change
//! happens under one lock (`/run/berth/net/lock`). An endpoint file is written before anything
//! it describes is created and removed after all of it is gone, so whoever finds an endpoint
//! whose process is dead (the container's monitor, `stop`/`rm` in a killed monitor's place, or
//! the sweep every berth command runs) can tear it down; teardown is idempotent.

pub mod bridge;
pub mod dns;
pub mod ipam;
pub mod netlink;
pub mod ports;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use bridge::BRIDGE;
pub use dns::DnsOptions;
pub use ipam::Subnet;
pub use ports::{Mapping, PortBinding};

use crate::sys::{self, FileLock};

pub const STATE_DIR: &str = "/run/berth/net";
/// The interface name inside the container.
const CONTAINER_IF: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("netlink {op}: {source}")]
    Netlink { op: &'static str, source: io::Error },
    #[error("nftables: {0}")]
    Nft(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Config(String),
    #[error("invalid port specification: {0}")]
    InvalidPort(String),
    #[error("no free address left in {0}")]
    Exhausted(String),
    #[error("Bind for {0} failed: port is already allocated")]
    PortAllocated(String),
    #[error("failed to bind host port {host} for {container}: {source}")]
    PortBind {
        host: String,
        container: String,
        source: io::Error,
    },
}

/// What a container asked of the network at create (kept in its record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// `-p`, expanded.
    #[serde(default)]
    pub publish: Vec<PortBinding>,
    /// `-P`: publish every exposed port on an ephemeral host port.
    #[serde(default)]
    pub publish_all: bool,
    /// The image's `ExposedPorts` and `--expose`, as `80/tcp`.
    #[serde(default)]
    pub exposed: Vec<String>,
    #[serde(default)]
    pub dns: DnsOptions,
    /// Docker's `bip` from the configuration at create (None: 10.88.0.1/16).
    #[serde(default)]
    pub bip: Option<String>,
}

impl NetworkOptions {
    /// The port bindings to set up at start: `-p`, plus every exposed port not already
    /// published with `-P`.
    pub fn bindings(&self) -> Vec<PortBinding> {
        let mut out = self.publish.clone();
        if self.publish_all {
            for e in &self.exposed {
                for (port, proto) in ports::parse_expose(e).unwrap_or_default() {
                    if !out
                        .iter()
                        .any(|b| b.container_port == port && b.proto == proto)
                    {
                        out.push(PortBinding {
                            host_ip: String::new(),
                            host_port: 0,
                            host_port_end: 0,
                            container_port: port,
                            proto,
                        });
                    }
                }
            }
        }
        out
    }
}

/// A connected container, as recorded in `endpoints/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub pid: i32,
    pub pid_start: u64,
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    pub bridge: String,
    pub veth: String,
    #[serde(default)]
    pub ports: Vec<Mapping>,
}

impl Endpoint {
    /// Whether the container's init still runs (same start time; `process_start_time` already
    /// treats a zombie as gone).
    fn alive(&self) -> bool {
        self.pid > 0 && sys::process_start_time(self.pid) == Some(self.pid_start)
    }
}

fn endpoints_dir() -> PathBuf {
    Path::new(STATE_DIR).join("endpoints")
}

fn endpoint_path(id: &str) -> PathBuf {
    endpoints_dir().join(format!("{id}.json"))
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> NetworkError {
    let path = path.into();
    move |source| NetworkError::Io { path, source }
}

fn lock() -> Result<FileLock, NetworkError> {
    fs::create_dir_all(endpoints_dir()).map_err(io_err(endpoints_dir()))?;
    let path = Path::new(STATE_DIR).join("lock");
    FileLock::exclusive(&path).map_err(io_err(path))
}

/// The endpoint of container `id`, if it is connected (and its process alive).
pub fn endpoint(id: &str) -> Option<Endpoint> {
    let bytes = fs::read(endpoint_path(id)).ok()?;
    let ep: Endpoint = serde_json::from_slice(&bytes).ok()?;
    ep.alive().then_some(ep)
}

fn all_endpoints() -> Vec<Endpoint> {
    let Ok(entries) = fs::read_dir(endpoints_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
        .collect()
}

/// The host port bindings a started container holds: keep them open while it runs.
pub type Reservations = Vec<OwnedFd>;

/// What `connect` needs to know about the container.
pub struct ConnectRequest<'a> {
    pub id: &'a str,
    /// The container's init, already in its own network namespace.
    pub pid: i32,
    /// Docker's `bip` (None: 10.88.0.1/16).
    pub bip: Option<&'a str>,
    pub options: &'a NetworkOptions,
}

/// Connects a container to the default bridge: a veth pair (`eth0` inside), the next free
/// address, a default route, `lo` up, and its published ports. Undone completely on failure.
pub fn connect(req: &ConnectRequest) -> Result<(Endpoint, Reservations), NetworkError> {
    let subnet = Subnet::parse(req.bip.unwrap_or(ipam::DEFAULT_BIP))?;
    let bindings = req.options.bindings();
    let _lock = lock()?;
    let mut nl = netlink::Netlink::open().map_err(|source| NetworkError::Netlink {
        op: "socket",
        source,
    })?;

    // Leases of dead containers are released first (and their leftovers removed).
    let mut live = Vec::new();
    for ep in all_endpoints() {
        if ep.alive() {
            live.push(ep);
        } else {
            teardown_locked(&mut nl, &ep, true);
        }
    }
    sys::trace("net-locked");
    let bridge_index = bridge::ensure(&mut nl, &subnet, || {
        live.iter()
            .map(|ep| ports::publish_script(ep.address, &ep.ports))
            .collect()
    })?;

    sys::trace("net-bridge-ok");
    // Ports first: nothing has been created yet if one is taken.
    let mut reserved = Vec::new();
    let mut mappings = Vec::new();
    for b in &bindings {
        let taken = live.iter().flat_map(|ep| &ep.ports).any(|m| {
            b.host_port != 0
                && m.host_port == b.host_port
                && m.proto == b.proto
                && (b.host_ip.is_empty()
                    || m.host_ip.is_unspecified()
                    || m.host_ip.to_string() == b.host_ip)
        });
        if taken && b.host_port_end == 0 {
            let ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            return Err(NetworkError::PortAllocated(format!("{ip}:{}", b.host_port)));
        }
        let r = ports::reserve(b)?;
        mappings.push(r.mapping);
        reserved.push(r.socket);
    }

    let used: BTreeSet<Ipv4Addr> = live.iter().map(|ep| ep.address).collect();
    let last_path = Path::new(STATE_DIR).join("last-address");
    let last = fs::read_to_string(&last_path)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let address = subnet.allocate(&used, last)?;
    let mac = ipam::mac_for(address);
    let ep = Endpoint {
        id: req.id.to_string(),
        pid: req.pid,
        pid_start: sys::process_start_time(req.pid).unwrap_or(0),
        address,
        gateway: subnet.gateway,
        prefix: subnet.prefix,
        mac: ipam::mac_text(mac),
        bridge: BRIDGE.to_string(),
        veth: veth_name(req.id),
        ports: mappings,
    };
    let path = endpoint_path(req.id);
    let bytes = serde_json::to_vec(&ep).expect("endpoint serialises");
    sys::replace_file(&path, &bytes, 0o600).map_err(io_err(&path))?;
    let _ = fs::write(&last_path, address.to_string());

    sys::trace("net-leased");
    let result = plumb(&mut nl, &ep, bridge_index, mac).and_then(|()| {
        sys::trace("net-plumbed");
        ports::nft(&ports::publish_script(ep.address, &ep.ports))
    });
    if let Err(e) = result {
        teardown_locked(&mut nl, &ep, true);
        return Err(e);
    }
    Ok((ep, reserved))
}

/// `veth` + 11 hex digits of the ID (interface names are at most 15 bytes).
fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..id.len().min(11)])
}

fn plumb(
    nl: &mut netlink::Netlink,
    ep: &Endpoint,
    bridge_index: u32,
    mac: [u8; 6],
) -> Result<(), NetworkError> {
    let err = |op: &'static str| move |source| NetworkError::Netlink { op, source };
    let netns_path = format!("/proc/{}/ns/net", ep.pid);
    let netns: OwnedFd = fs::File::open(&netns_path)
        .map_err(io_err(&netns_path))?
        .into();
    let pair = netlink::VethPair {
        host: &ep.veth,
        master: bridge_index,
        peer: CONTAINER_IF,
        peer_pid: ep.pid as u32,
        peer_mac: mac,
    };
    match nl.add_veth(&pair) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            // A leftover of an earlier run of this container: replace it.
            nl.delete_link(&ep.veth).map_err(err("delete link"))?;
            nl.add_veth(&pair).map_err(err("create veth"))?;
        }
        other => other.map_err(err("create veth"))?,
    }
    sys::trace("net-veth");
    let mut inner = netlink::Netlink::open_in(&netns).map_err(err("socket in container"))?;
    let lo = inner.link_index("lo").map_err(err("get lo"))?;
    if let Some(lo) = lo {
        inner.set_up(lo).map_err(err("set lo up"))?;
    }
    let eth = inner
        .link_index(CONTAINER_IF)
        .map_err(err("get eth0"))?
        .ok_or_else(|| NetworkError::Netlink {
            op: "get eth0",
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    inner
        .add_address(eth, ep.address, ep.prefix)
        .map_err(err("add address"))?;
    inner.set_up(eth).map_err(err("set eth0 up"))?;
    inner
        .add_default_route(eth, ep.gateway)
        .map_err(err("add default route"))?;
    Ok(())
}

/// Removes an endpoint's rules, veth and lease. Best effort, idempotent; the endpoint file
/// goes last, and only once the rules are gone, so a failure is retried by the next sweep.
///
/// The veth pair dies with the container's network namespace, which the kernel destroys
/// (asynchronously, within milliseconds here) once the container's last process is gone.
/// Deleting it ourselves costs ~15 ms of RCU synchronisation, so it is skipped
/// (`delete_veth: false`) when the caller has just seen the container's init exit (its
/// monitor); a restart that finds the old name still there deletes it then.
fn teardown_locked(nl: &mut netlink::Netlink, ep: &Endpoint, delete_veth: bool) {
    if !ep.ports.is_empty()
        && ports::nft(&ports::unpublish_script(ep.address, &ep.ports)).is_err()
        && table_exists()
    {
        return;
    }
    sys::trace("net-unpublished");
    if delete_veth && nl.delete_link(&ep.veth).is_err() {
        return;
    }
    sys::trace("net-veth-deleted");
    let _ = fs::remove_file(endpoint_path(&ep.id));
}

fn table_exists() -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "ip", ports::TABLE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Disconnects container `id` after its process `pid` exited (`None`: whatever process it
/// had — the container is being removed). An endpoint of a newer run of the same container
/// (another pid) is left alone. Idempotent.
pub fn disconnect(id: &str, pid: Option<i32>) -> Result<(), NetworkError> {
    let path = endpoint_path(id);
    if !path.exists() {
        return Ok(());
    }
    let _lock = lock()?;
    let Some(ep) = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
    else {
        let _ = fs::remove_file(&path);
        return Ok(());
    };
    if let Some(pid) = pid
        && pid != ep.pid
    {
        return Ok(());
    }
    let mut nl = netlink::Netlink::open().map_err(|source| NetworkError::Netlink {
        op: "socket",
        source,
    })?;
    teardown_locked(&mut nl, &ep, pid.is_none());
    Ok(())
}

/// Tears down the endpoints of containers that died without their monitor cleaning up (it was
/// killed). Cheap when there is nothing to do: one directory read and a stat per endpoint.
pub fn sweep() {
    let dead: Vec<Endpoint> = all_endpoints()
        .into_iter()
        .filter(|ep| !ep.alive())
        .collect();
    if dead.is_empty() {
        return;
    }
    let Ok(_lock) = lock() else { return };
    let Ok(mut nl) = netlink::Netlink::open() else {
        return;
    };
    for ep in dead {
        // Re-read under the lock: someone may have cleaned it (or restarted the container).
        let Some(current) = fs::read(endpoint_path(&ep.id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Endpoint>(&b).ok())
        else {
            continue;
        };
        if !current.alive() {
            teardown_locked(&mut nl, &current, true);
        }
    }
}
