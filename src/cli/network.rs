//! `port`, and the network parts of `ps` and `inspect`.

use clap::Args;
use serde_json::{Value, json};

use super::{CliResult, Context, Failure, Verb};
use crate::container::record::ContainerRecord;
use crate::container::store::ContainerStore;
use crate::network::{self, Mapping};

fn sorted(mut ports: Vec<Mapping>) -> Vec<Mapping> {
    ports.sort_by(|a, b| {
        (a.container_port, &a.proto, a.host_port).cmp(&(b.container_port, &b.proto, b.host_port))
    });
    ports
}

/// The PORTS column of `ps`: `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ps_ports(id: &str, exposed: &[String]) -> String {
    let ep = network::endpoint(id);
    let Some(ep) = ep else {
        return String::new();
    };
    let mut items: Vec<String> = sorted(ep.ports.clone())
        .iter()
        .map(Mapping::ps_text)
        .collect();
    for e in exposed {
        let published = ep
            .ports
            .iter()
            .any(|m| format!("{}/{}", m.container_port, m.proto) == *e);
        if !published {
            items.push(e.clone());
        }
    }
    items.join(", ")
}

/// `NetworkSettings` of `inspect`.
pub fn inspect_settings(record: &ContainerRecord, running: bool) -> Value {
    let ep = running.then(|| network::endpoint(&record.id)).flatten();
    let mut ports = serde_json::Map::new();
    if record.network_mode == "bridge" && running {
        for e in &record.net.exposed {
            ports.insert(e.clone(), Value::Null);
        }
    }
    if let Some(ep) = &ep {
        for m in sorted(ep.ports.clone()) {
            let key = format!("{}/{}", m.container_port, m.proto);
            let entry = ports.entry(key).or_insert_with(|| json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(list) = entry.as_array_mut() {
                list.push(
                    json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()}),
                );
            }
        }
    }
    let (ip, gw, prefix, mac) = match &ep {
        Some(ep) => (
            ep.address.to_string(),
            ep.gateway.to_string(),
            ep.prefix,
            ep.mac.clone(),
        ),
        None => (String::new(), String::new(), 0, String::new()),
    };
    let mut networks = serde_json::Map::new();
    if record.network_mode != "default" {
        networks.insert(
            record.network_mode.clone(),
            json!({
                "Gateway": gw,
                "IPAddress": ip,
                "IPPrefixLen": prefix,
                "MacAddress": mac,
                "NetworkID": record.network_mode,
            }),
        );
    }
    json!({
        "Bridge": "",
        "Ports": ports,
        "Gateway": gw,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "MacAddress": mac,
        "Networks": networks,
    })
}

/// `HostConfig.PortBindings` of `inspect`.
pub fn port_bindings(record: &ContainerRecord) -> Value {
    let mut out = serde_json::Map::new();
    for b in &record.net.publish {
        let key = format!("{}/{}", b.container_port, b.proto);
        let host_port = match (b.host_port, b.host_port_end) {
            (0, _) => String::new(),
            (p, 0) => p.to_string(),
            (p, e) => format!("{p}-{e}"),
        };
        let entry = out.entry(key).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": b.host_ip, "HostPort": host_port}));
        }
    }
    Value::Object(out)
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// `port CONTAINER [PORT[/PROTO]]`.
impl Verb for PortArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = ContainerStore::open(&context.root).map_err(Failure::berth)?;
        let dir = store.find(&self.container).map_err(Failure::daemon)?;
        let record = dir.record().map_err(Failure::berth)?;
        let ports = network::endpoint(&record.id)
            .map(|ep| sorted(ep.ports))
            .unwrap_or_default();
        match &self.port {
            None => {
                for m in &ports {
                    println!(
                        "{}/{} -> {}:{}",
                        m.container_port, m.proto, m.host_ip, m.host_port
                    );
                }
                Ok(0)
            }
            Some(p) => {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let num: u16 = num
                    .parse()
                    .map_err(|_| Failure::berth(format!("Error: invalid port ({p})")))?;
                let found: Vec<&Mapping> = ports
                    .iter()
                    .filter(|m| m.container_port == num && m.proto == proto)
                    .collect();
                if found.is_empty() {
                    return Err(Failure {
                        code: 1,
                        message: format!(
                            "Error: No public port '{num}/{proto}' published for {}",
                            self.container
                        ),
                    });
                }
                for m in found {
                    println!("{}:{}", m.host_ip, m.host_port);
                }
                Ok(0)
            }
        }
    }
}
