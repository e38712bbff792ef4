//! The default bridge: `berth0` with the gateway address, IPv4 forwarding, and the `ip berth`
//! nftables table (NAT for the subnet and the published-port maps). Set up once per boot (a
//! marker under /run records it), checked cheaply on every container start.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::ipam::Subnet;
use super::netlink::Netlink;
use super::{NetworkError, STATE_DIR, ports};

pub const BRIDGE: &str = "berth0";

fn marker() -> PathBuf {
    PathBuf::from(STATE_DIR).join("bridge")
}

fn netlink_err(op: &'static str) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Netlink { op, source }
}

/// Makes sure the bridge exists with its address and rules; returns its index. Called under
/// the network lock. `publish` re-adds live containers' ports when the table is rebuilt.
pub fn ensure(
    nl: &mut Netlink,
    subnet: &Subnet,
    publish: impl FnOnce() -> String,
) -> Result<u32, NetworkError> {
    let want = subnet_marker(subnet);
    let index = nl.link_index(BRIDGE).map_err(netlink_err("get link"))?;
    if let Some(index) = index
        && fs::read_to_string(marker()).ok().as_deref() == Some(want.as_str())
    {
        return Ok(index);
    }
    let index = nl
        .ensure_bridge(BRIDGE)
        .map_err(netlink_err("create bridge"))?;
    nl.add_address(index, subnet.gateway, subnet.prefix)
        .map_err(netlink_err("add bridge address"))?;
    nl.set_up(index).map_err(netlink_err("set bridge up"))?;
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    // Lets DNAT send 127.0.0.1-sourced packets (a port published to the host's loopback) out
    // of the bridge; the `guard` chain drops what containers send to 127/8 themselves.
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"),
        "1",
    )?;
    ports::nft(&ports::table_script(BRIDGE, &subnet.cidr(), &publish()))?;
    allow_forwarding();
    fs::create_dir_all(STATE_DIR).map_err(|source| NetworkError::Io {
        path: STATE_DIR.into(),
        source,
    })?;
    fs::write(marker(), want).map_err(|source| NetworkError::Io {
        path: marker(),
        source,
    })?;
    Ok(index)
}

fn subnet_marker(subnet: &Subnet) -> String {
    format!("{BRIDGE} {}/{}\n", subnet.gateway, subnet.prefix)
}

fn sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    if fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    fs::write(path, value).map_err(|source| NetworkError::Io {
        path: path.into(),
        source,
    })
}

/// A host whose iptables FORWARD chain drops by default (Docker sets `-P FORWARD DROP`) would
/// drop everything routed to or from the bridge, whatever berth's own table says: a drop in
/// any base chain is final. So, once per boot, berth accepts its bridge's traffic at the top
/// of that chain, through `iptables` itself so its owner (iptables-nft or legacy) keeps
/// understanding the chain. No iptables, or no such chain: nothing to do.
fn allow_forwarding() {
    for rule in [
        ["-i", BRIDGE, "-j", "ACCEPT"],
        ["-o", BRIDGE, "-j", "ACCEPT"],
    ] {
        let check = Command::new("iptables")
            .args(["-w", "-C", "FORWARD"])
            .args(rule)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match check {
            Ok(s) if s.success() => continue,
            Ok(_) => {
                let _ = Command::new("iptables")
                    .args(["-w", "-I", "FORWARD"])
                    .args(rule)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            Err(_) => return,
        }
    }
}
