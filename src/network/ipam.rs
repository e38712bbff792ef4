//! Address management for the bridge: the subnet (Docker's `bip` key, default 10.88.0.1/16),
//! and picking a free address. The leases themselves are the endpoint files (see `mod.rs`):
//! allocation happens under the network lock, with every live endpoint's address taken.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::NetworkError;

pub const DEFAULT_BIP: &str = "10.88.0.1/16";

/// The bridge's subnet and its gateway (the bridge's own address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub gateway: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses Docker's `bip`: the bridge address with its prefix length, `10.88.0.1/16`.
    pub fn parse(bip: &str) -> Result<Subnet, NetworkError> {
        let invalid = || NetworkError::Config(format!("invalid bip {bip:?}: want ADDRESS/PREFIX"));
        let (addr, prefix) = bip.split_once('/').ok_or_else(invalid)?;
        let gateway: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if !(8..=30).contains(&prefix) {
            return Err(invalid());
        }
        let subnet = Subnet { gateway, prefix };
        if gateway == subnet.network() || gateway == subnet.broadcast() {
            return Err(invalid());
        }
        Ok(subnet)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix as u32)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.gateway) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.gateway) | !self.mask())
    }

    /// `10.88.0.0/16`
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.gateway) & self.mask()
    }

    /// The first address after `after` (wrapping) that is neither the network, broadcast or
    /// gateway address nor in `used`. Starting after the last one handed out (as Docker does)
    /// keeps a just-released address, still in other neighbours' ARP caches and conntrack,
    /// from being reused at once.
    pub fn allocate(
        &self,
        used: &BTreeSet<Ipv4Addr>,
        after: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetworkError> {
        let first = u32::from(self.network()) + 1;
        let last = u32::from(self.broadcast()) - 1;
        let start = match after {
            Some(a) if self.contains(a) && u32::from(a) < last => u32::from(a) + 1,
            _ => first,
        };
        let size = last - first + 1;
        for i in 0..size {
            let candidate = first + (start - first + i) % size;
            let addr = Ipv4Addr::from(candidate);
            if addr != self.gateway && !used.contains(&addr) {
                return Ok(addr);
            }
        }
        Err(NetworkError::Exhausted(self.cidr()))
    }
}

/// Docker's MAC for an address: 02:42 and the four address bytes. The same address always
/// gets the same MAC, so a neighbour's cached entry stays right when an address is reused.
pub fn mac_for(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip_and_allocation() {
        let s = Subnet::parse("10.88.0.1/16").unwrap();
        assert_eq!(s.cidr(), "10.88.0.0/16");
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        let mut used = BTreeSet::new();
        let a = s.allocate(&used, None).unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 88, 0, 2));
        used.insert(a);
        assert_eq!(
            s.allocate(&used, Some(a)).unwrap(),
            Ipv4Addr::new(10, 88, 0, 3)
        );
        // Wraps around past the end, skipping the gateway.
        let small = Subnet::parse("192.168.5.1/30").unwrap();
        let only = small.allocate(&BTreeSet::new(), Some(Ipv4Addr::new(192, 168, 5, 2)));
        assert_eq!(only.unwrap(), Ipv4Addr::new(192, 168, 5, 2));
        let mut full = BTreeSet::new();
        full.insert(Ipv4Addr::new(192, 168, 5, 2));
        assert!(small.allocate(&full, None).is_err());
        assert!(Subnet::parse("10.88.0.0/16").is_err());
        assert!(Subnet::parse("10.88.0.1").is_err());
        assert_eq!(mac_text(mac_for(a)), "02:42:0a:58:00:02");
    }
}
