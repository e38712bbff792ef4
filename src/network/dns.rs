//! The container's `/etc/hosts` and `/etc/resolv.conf`, as Docker writes them.

use std::fs;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Name-resolution flags of `create`/`run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsOptions {
    /// `--add-host NAME:IP`
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `--dns`
    #[serde(default)]
    pub servers: Vec<String>,
    /// `--dns-search`
    #[serde(default)]
    pub search: Vec<String>,
    /// `--dns-option`
    #[serde(default)]
    pub options: Vec<String>,
}

/// Checks `--add-host NAME:IP` (Docker also accepts `NAME=IP`); returns `(name, ip)`.
pub fn parse_add_host(spec: &str) -> Option<(String, String)> {
    let (name, ip) = spec.split_once('=').or_else(|| spec.split_once(':'))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        return None;
    }
    Some((name.to_string(), ip.to_string()))
}

/// Docker's `/etc/hosts`: the standard entries, the `--add-host` ones, then the container's
/// own address and hostname (`127.0.1.1` stands in before an address is known, or with
/// `--network none`). With `--network host` the host's own file is used.
pub fn hosts_file(
    network: &str,
    hostname: &str,
    address: Option<Ipv4Addr>,
    dns: &DnsOptions,
) -> String {
    let mut out = if network == "host"
        && let Ok(text) = fs::read_to_string("/etc/hosts")
    {
        text
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            .to_string()
    };
    for entry in &dns.add_hosts {
        if let Some((name, ip)) = parse_add_host(entry) {
            out += &format!("{ip}\t{name}\n");
        }
    }
    if network != "host" {
        match address {
            Some(a) => out += &format!("{a}\t{hostname}\n"),
            None => out += &format!("127.0.1.1\t{hostname}\n"),
        }
    }
    out
}

/// The host's resolv.conf; loopback nameservers cannot work from another network namespace,
/// so (as Docker does) they are dropped, and Google's servers used if none are left. `--dns`,
/// `--dns-search` and `--dns-option` replace the host's corresponding lines.
pub fn resolv_conf(network: &str, dns: &DnsOptions) -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if network == "host" && dns == &DnsOptions::default() {
        return host;
    }
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let addr = words.next().unwrap_or("");
                if !dns.servers.is_empty()
                    || (network != "host" && (addr.starts_with("127.") || addr == "::1"))
                {
                    continue;
                }
                servers += 1;
            }
            Some("search" | "domain") if !dns.search.is_empty() => continue,
            Some("options") if !dns.options.is_empty() => continue,
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
    }
    for s in &dns.servers {
        out += &format!("nameserver {s}\n");
        servers += 1;
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    let search: Vec<&str> = dns
        .search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        out += &format!("search {}\n", search.join(" "));
    }
    if !dns.options.is_empty() {
        out += &format!("options {}\n", dns.options.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv() {
        let dns = DnsOptions {
            add_hosts: vec!["db:10.0.0.5".into(), "bad".into()],
            servers: vec!["1.1.1.1".into()],
            search: vec!["example.com".into()],
            options: vec!["ndots:2".into()],
        };
        let h = hosts_file("bridge", "web", Some(Ipv4Addr::new(10, 88, 0, 2)), &dns);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n10.88.0.2\tweb\n"));
        let r = resolv_conf("bridge", &dns);
        assert!(r.contains("nameserver 1.1.1.1\n"));
        assert!(!r.contains("nameserver 127."));
        assert!(r.contains("search example.com\n"));
        assert!(r.contains("options ndots:2\n"));
        assert_eq!(
            parse_add_host("h:::1"),
            Some(("h".to_string(), "::1".to_string()))
        );
    }
}
