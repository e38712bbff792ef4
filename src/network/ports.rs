//! Port publishing: `-p` parsing, host port reservation, and the nftables rules.
//!
//! All of berth's rules live in one nftables table, `ip berth`, whose chains never change
//! after the bridge is set up; a published port is one element in a map
//! (`proto . port → container address . port`, or `host address . proto . port → …` when bound
//! to one host address). Publishing or unpublishing a container's ports is therefore one
//! `add element`/`delete element` transaction, whatever the number of ports.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::NetworkError;

pub const TABLE: &str = "berth";

/// One `-p` entry as asked (after range expansion), kept in the container record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Empty for all addresses.
    #[serde(default)]
    pub host_ip: String,
    /// 0: any free (ephemeral) port.
    pub host_port: u16,
    /// With a host range and one container port: the last port of the range to try.
    #[serde(default)]
    pub host_port_end: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// A published port as set up: what `port`, `ps` and `inspect` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

impl Mapping {
    /// `0.0.0.0:8080->80/tcp`
    pub fn ps_text(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let p = s.parse().ok()?;
            (p, p)
        }
    };
    (a > 0 && a <= b).then_some((a, b))
}

/// Parses `[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` with ranges on either port, as Docker does.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, NetworkError> {
    let invalid = |why: &str| NetworkError::InvalidPort(format!("{why}: {spec}"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(invalid("invalid proto"));
    }
    if rest.starts_with('[') {
        return Err(invalid("IPv6 host addresses are not supported"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => return Err(invalid("invalid port format")),
    };
    if !ip.is_empty() && ip.parse::<Ipv4Addr>().is_err() {
        return Err(invalid("invalid IP address"));
    }
    let host_ip = if ip == "0.0.0.0" { "" } else { ip };
    let (c0, c1) = parse_range(ctr).ok_or_else(|| invalid("invalid containerPort"))?;
    let hosts = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| invalid("invalid hostPort"))?)
    };
    let mut out = Vec::new();
    match hosts {
        None => {
            for c in c0..=c1 {
                out.push(PortBinding {
                    host_ip: host_ip.into(),
                    host_port: 0,
                    host_port_end: 0,
                    container_port: c,
                    proto: proto.clone(),
                });
            }
        }
        Some((h0, h1)) if c0 == c1 && h1 > h0 => out.push(PortBinding {
            host_ip: host_ip.into(),
            host_port: h0,
            host_port_end: h1,
            container_port: c0,
            proto: proto.clone(),
        }),
        Some((h0, h1)) => {
            if h1 - h0 != c1 - c0 {
                return Err(invalid(
                    "invalid ranges specified for container and host Ports",
                ));
            }
            for i in 0..=(c1 - c0) {
                out.push(PortBinding {
                    host_ip: host_ip.into(),
                    host_port: h0 + i,
                    host_port_end: 0,
                    container_port: c0 + i,
                    proto: proto.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Parses `--expose` and the image's `ExposedPorts` keys: `80`, `80/udp`, `8000-8010`.
pub fn parse_expose(spec: &str) -> Result<Vec<(u16, String)>, NetworkError> {
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    let (a, b) = parse_range(ports).ok_or_else(|| {
        NetworkError::InvalidPort(format!("invalid range format for --expose: {spec}"))
    })?;
    Ok((a..=b).map(|p| (p, proto.clone())).collect())
}

/// A host port held by berth while its container runs, so no host process can take it
/// (and so "in use" is found out at `run`, not when traffic silently goes elsewhere).
pub struct Reservation {
    pub mapping: Mapping,
    pub socket: OwnedFd,
}

/// Binds `binding`'s host port (or a free one) on the host for `proto`, for container port
/// `container_port`.
pub fn reserve(binding: &PortBinding) -> Result<Reservation, NetworkError> {
    let ip: Ipv4Addr = if binding.host_ip.is_empty() {
        Ipv4Addr::UNSPECIFIED
    } else {
        binding
            .host_ip
            .parse()
            .map_err(|_| NetworkError::InvalidPort(binding.host_ip.clone()))?
    };
    let last = if binding.host_port_end > binding.host_port {
        binding.host_port_end
    } else {
        binding.host_port
    };
    let mut error = None;
    for port in binding.host_port..=last {
        match bind(ip, port, &binding.proto) {
            Ok((socket, port)) => {
                return Ok(Reservation {
                    mapping: Mapping {
                        host_ip: ip,
                        host_port: port,
                        container_port: binding.container_port,
                        proto: binding.proto.clone(),
                    },
                    socket,
                });
            }
            Err(e) => error = Some(e),
        }
    }
    let e = error.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EADDRINUSE));
    Err(NetworkError::PortBind {
        host: format!("{ip}:{}", binding.host_port),
        container: format!("{}/{}", binding.container_port, binding.proto),
        source: e,
    })
}

fn bind(ip: Ipv4Addr, port: u16, proto: &str) -> io::Result<(OwnedFd, u16)> {
    let addr = SocketAddrV4::new(ip, port);
    if proto == "udp" {
        let s = UdpSocket::bind(addr)?;
        let port = s.local_addr()?.port();
        Ok((s.into(), port))
    } else {
        // A bound socket that never listens: it holds the port; the traffic itself is
        // DNATed to the container before any socket lookup.
        tcp_bind(addr)
    }
}

/// bind(2) without listen(2) (std's TcpListener always listens).
fn tcp_bind(addr: SocketAddrV4) -> io::Result<(OwnedFd, u16)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        use std::os::fd::AsRawFd;
        if libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut out: libc::sockaddr_in = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::getsockname(
            fd.as_raw_fd(),
            (&mut out as *mut libc::sockaddr_in).cast(),
            &mut len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok((fd, u16::from_be(out.sin_port)))
    }
}

/// The nftables elements for `mappings` of container address `addr`.
fn elements(addr: Ipv4Addr, mappings: &[Mapping]) -> (Vec<String>, Vec<String>) {
    let mut any = Vec::new();
    let mut by_ip = Vec::new();
    for m in mappings {
        let value = format!("{addr} . {}", m.container_port);
        if m.host_ip.is_unspecified() {
            any.push(format!("{} . {} : {value}", m.proto, m.host_port));
        } else {
            by_ip.push(format!(
                "{} . {} . {} : {value}",
                m.host_ip, m.proto, m.host_port
            ));
        }
    }
    (any, by_ip)
}

/// The transaction that publishes `mappings`.
pub fn publish_script(addr: Ipv4Addr, mappings: &[Mapping]) -> String {
    let (any, by_ip) = elements(addr, mappings);
    let mut s = String::new();
    if !any.is_empty() {
        s += &format!(
            "add element ip {TABLE} ports_any {{ {} }}\n",
            any.join(", ")
        );
    }
    if !by_ip.is_empty() {
        s += &format!(
            "add element ip {TABLE} ports_ip {{ {} }}\n",
            by_ip.join(", ")
        );
    }
    s
}

/// The transaction that unpublishes `mappings`. Adding before deleting makes it idempotent:
/// an element already gone is re-added (with the same value) and deleted again, all in one
/// atomic transaction.
pub fn unpublish_script(addr: Ipv4Addr, mappings: &[Mapping]) -> String {
    let (any, by_ip) = elements(addr, mappings);
    let keys = |elems: &[String]| -> String {
        elems
            .iter()
            .map(|e| e.split(" : ").next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = publish_script(addr, mappings);
    if !any.is_empty() {
        s += &format!("delete element ip {TABLE} ports_any {{ {} }}\n", keys(&any));
    }
    if !by_ip.is_empty() {
        s += &format!(
            "delete element ip {TABLE} ports_ip {{ {} }}\n",
            keys(&by_ip)
        );
    }
    s
}

/// The whole `ip berth` table for the bridge `bridge` and subnet `cidr`, with `elements`
/// (live containers' ports) re-added; replaces any previous version atomically.
pub fn table_script(bridge: &str, cidr: &str, publish: &str) -> String {
    format!(
        r#"add table ip {TABLE}
delete table ip {TABLE}
table ip {TABLE} {{
    map ports_any {{
        type inet_proto . inet_service : ipv4_addr . inet_service
    }}
    map ports_ip {{
        type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
    }}
    chain ports {{
        dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
        dnat ip to meta l4proto . th dport map @ports_any
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local jump ports
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local jump ports
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {cidr} oifname != "{bridge}" masquerade
        oifname "{bridge}" fib saddr type local masquerade
        oifname "{bridge}" ip saddr {cidr} ct status dnat masquerade
    }}
    chain guard {{
        type filter hook prerouting priority raw; policy accept;
        iifname "{bridge}" ip daddr 127.0.0.0/8 drop
    }}
}}
{publish}"#
    )
}

/// Applies an nftables script as one transaction: in-process through libnftables (the
/// library behind the `nft` command, loaded with dlopen when present), else `nft -f -`.
/// In-process saves the ~10 ms of starting `nft` on every start and stop with published ports.
pub fn nft(script: &str) -> Result<(), NetworkError> {
    if script.trim().is_empty() {
        return Ok(());
    }
    if let Some(lib) = libnftables::get() {
        return lib.run(script);
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Nft(format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Nft(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(NetworkError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// libnftables' stable C API (nftables' `libnftables.so.1`), bound at run time so berth
/// neither links against it nor needs it installed (it falls back to the `nft` command).
mod libnftables {
    use std::ffi::{CStr, CString, c_char, c_int, c_void};
    use std::sync::OnceLock;

    use super::NetworkError;

    type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
    type CtxFree = unsafe extern "C" fn(*mut c_void);
    type BufferError = unsafe extern "C" fn(*mut c_void) -> c_int;
    type GetErrorBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
    type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

    pub struct Lib {
        ctx_new: CtxNew,
        ctx_free: CtxFree,
        buffer_error: BufferError,
        get_error_buffer: GetErrorBuffer,
        run_cmd: RunCmd,
    }

    pub fn get() -> Option<&'static Lib> {
        static LIB: OnceLock<Option<Lib>> = OnceLock::new();
        LIB.get_or_init(|| {
            if std::env::var_os("BERTH_NFT_COMMAND").is_some() {
                return None;
            }
            // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to the
            // signature libnftables documents (nftables/libnftables.h).
            unsafe {
                let handle = libc::dlopen(c"libnftables.so.1".as_ptr(), libc::RTLD_NOW);
                if handle.is_null() {
                    return None;
                }
                let sym = |name: &CStr| {
                    let p = libc::dlsym(handle, name.as_ptr());
                    (!p.is_null()).then_some(p)
                };
                Some(Lib {
                    ctx_new: std::mem::transmute::<*mut c_void, CtxNew>(sym(c"nft_ctx_new")?),
                    ctx_free: std::mem::transmute::<*mut c_void, CtxFree>(sym(c"nft_ctx_free")?),
                    buffer_error: std::mem::transmute::<*mut c_void, BufferError>(sym(
                        c"nft_ctx_buffer_error",
                    )?),
                    get_error_buffer: std::mem::transmute::<*mut c_void, GetErrorBuffer>(sym(
                        c"nft_ctx_get_error_buffer",
                    )?),
                    run_cmd: std::mem::transmute::<*mut c_void, RunCmd>(sym(
                        c"nft_run_cmd_from_buffer",
                    )?),
                })
            }
        })
        .as_ref()
    }

    impl Lib {
        pub fn run(&self, script: &str) -> Result<(), NetworkError> {
            let text = CString::new(script)
                .map_err(|_| NetworkError::Nft("script contains a NUL byte".into()))?;
            // SAFETY: a fresh context used by this thread only and freed before returning;
            // the error buffer is copied out before the free.
            unsafe {
                let ctx = (self.ctx_new)(0);
                if ctx.is_null() {
                    return Err(NetworkError::Nft("nft_ctx_new failed".into()));
                }
                (self.buffer_error)(ctx);
                let rc = (self.run_cmd)(ctx, text.as_ptr());
                let result = if rc == 0 {
                    Ok(())
                } else {
                    let e = (self.get_error_buffer)(ctx);
                    let message = if e.is_null() {
                        format!("error {rc}")
                    } else {
                        CStr::from_ptr(e).to_string_lossy().trim().to_string()
                    };
                    Err(NetworkError::Nft(message))
                };
                (self.ctx_free)(ctx);
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(p[0].host_port, 8080);
        assert_eq!(p[0].container_port, 80);
        assert_eq!(p[0].proto, "tcp");
        let p = parse_publish("127.0.0.1:18081:80/udp").unwrap();
        assert_eq!(p[0].host_ip, "127.0.0.1");
        assert_eq!(p[0].proto, "udp");
        let p = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!(p[0].host_port, 0);
        let p = parse_publish("80").unwrap();
        assert_eq!((p[0].host_port, p[0].container_port), (0, 80));
        let p = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (8002, 82));
        let p = parse_publish("8000-8010:80").unwrap();
        assert_eq!((p[0].host_port, p[0].host_port_end), (8000, 8010));
        assert!(parse_publish("8000-8002:80-81").is_err());
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("x:80").is_err());
        assert!(parse_publish("1.2.3:80:80").is_err());
        assert_eq!(parse_expose("53/udp").unwrap(), vec![(53, "udp".into())]);
        assert_eq!(parse_expose("80-81").unwrap().len(), 2);
    }

    #[test]
    fn scripts() {
        let m = vec![
            Mapping {
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 8080,
                container_port: 80,
                proto: "tcp".into(),
            },
            Mapping {
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 5353,
                container_port: 53,
                proto: "udp".into(),
            },
        ];
        let addr = Ipv4Addr::new(10, 88, 0, 2);
        assert_eq!(
            publish_script(addr, &m),
            "add element ip berth ports_any { tcp . 8080 : 10.88.0.2 . 80 }\n\
             add element ip berth ports_ip { 127.0.0.1 . udp . 5353 : 10.88.0.2 . 53 }\n"
        );
        let un = unpublish_script(addr, &m);
        assert!(un.ends_with(
            "delete element ip berth ports_any { tcp . 8080 }\n\
             delete element ip berth ports_ip { 127.0.0.1 . udp . 5353 }\n"
        ));
    }
}
