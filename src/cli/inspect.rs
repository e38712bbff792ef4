//! `inspect` (a container, else an image), `container inspect`, `image inspect`: Docker's
//! JSON documents, or a template applied to each.

use clap::Args;
use serde_json::json;

use super::network;
use super::template::Format;
use super::{CliResult, Context, Failure, Verb, print};
use crate::container::ContainerError;
use crate::container::lifecycle::current_state;
use crate::container::record::Status;
use crate::container::store::ContainerDir;
use crate::image::index;
use crate::image::inspect;

#[derive(Args, Debug)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Docker's container JSON, as far as berth has the fields.
fn container_json(dir: &ContainerDir) -> Result<serde_json::Value, ContainerError> {
    let record = dir.record()?;
    let state = current_state(dir)?;
    let running = state.status.is_running();
    let mounts: Vec<serde_json::Value> = record
        .mounts
        .iter()
        .map(|m| {
            json!({
                "Type": m.kind,
                "Name": if m.kind == "volume" { json!(m.name) } else { json!(null) },
                "Source": m.source,
                "Destination": m.destination,
                "RW": !m.read_only,
            })
        })
        .collect();
    // Records from before entrypoint/cmd were kept: the command as it runs, all of it Cmd.
    let (config_entrypoint, config_cmd) = if record.entrypoint.is_none() && record.cmd.is_none() {
        let mut all = vec![record.path.clone()];
        all.extend(record.args.iter().cloned());
        (None, Some(all))
    } else {
        (record.entrypoint.clone(), record.cmd.clone())
    };
    let mut doc = json!({
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": {
            "Status": state.status.as_str(),
            "Running": running,
            "Paused": state.status == Status::Paused,
            "Restarting": false,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": if running { state.pid } else { 0 },
            "ExitCode": state.exit_code.unwrap_or(0),
            "Error": state.error.clone().unwrap_or_default(),
            "StartedAt": state.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": state.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": record.image_id,
        // Docker's: empty for a driver that keeps no file.
        "LogPath": if record.log_config.readable() { json!(dir.readable_log_path()) } else { json!("") },
        "Name": format!("/{}", record.name),
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "AutoRemove": record.auto_remove,
            "NetworkMode": record.network_mode,
            "PortBindings": network::port_bindings(&record),
            "Init": record.init,
            // As merged at create: the flags over the configuration's defaults.
            "LogConfig": {
                "Type": record.log_config.driver,
                "Config": record.log_config.config,
            },
            "Binds": record.mounts.iter().filter(|m| m.kind == "bind").map(|m| format!("{}:{}{}", m.source.display(), m.destination, if m.read_only { ":ro" } else { "" })).collect::<Vec<_>>(),
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": record.layers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                "UpperDir": dir.path.join("upper"),
                "WorkDir": dir.path.join("work"),
                "MergedDir": dir.rootfs(),
            }
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": record.hostname,
            "User": record.user,
            "Tty": record.tty,
            "OpenStdin": record.open_stdin,
            "Env": record.env,
            "Cmd": config_cmd,
            "Image": record.image,
            "WorkingDir": record.working_dir,
            "Entrypoint": config_entrypoint,
            "Labels": record.labels,
            "StopSignal": record.stop_signal,
            "ExposedPorts": record.net.exposed.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        },
        "NetworkSettings": network::inspect_settings(&record, running),
    });
    // The resource, device and privilege flags, under Docker's names.
    if let (Some(host), Ok(serde_json::Value::Object(fields))) = (
        doc["HostConfig"].as_object_mut(),
        serde_json::to_value(&record.host_config),
    ) {
        host.extend(fields);
    }
    Ok(doc)
}

impl Verb for ContainerInspectArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.containers()?;
        let mut values = Vec::new();
        let mut failed = false;
        for name in &self.containers {
            match store.find(name).and_then(|d| container_json(&d)) {
                Ok(v) => values.push(v),
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                }
            }
        }
        match &self.format {
            Some(format) => {
                let format = Format::parse(format).map_err(Failure::berth)?;
                for v in &values {
                    println!("{}", format.render_json(v).map_err(Failure::berth)?);
                }
            }
            None => println!(
                "{}",
                serde_json::to_string_pretty(&values).expect("json serialises")
            ),
        }
        Ok(if failed { 1 } else { 0 })
    }
}

#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

impl Verb for ImageInspectArgs {
    fn run(self, context: &Context) -> CliResult {
        let format = parse_format(self.format.as_deref())?;
        let store = context.images()?;
        let repos = index::load(&store).map_err(Failure::berth)?;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for name in &self.images {
            match inspect::inspect(&store, &repos, name) {
                Ok(doc) => found.push(Inspected::Image(Box::new(doc))),
                Err(inspect::InspectError::Lookup(e)) => errors.push(format!(
                    "Error response from daemon: no such image: {name}: {e}"
                )),
                Err(e) => errors.push(format!("Error response from daemon: {e}")),
            }
        }
        print_inspected(&found, format.as_ref(), errors)
    }
}

// Docker's generic `inspect`, with `container inspect`'s flags: each name is looked up as a
// container first, then as an image. (A `///` comment here would replace the verb's help line.)
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub of: ContainerInspectArgs,
}

impl Verb for InspectArgs {
    fn run(self, context: &Context) -> CliResult {
        let format = parse_format(self.of.format.as_deref())?;
        let containers = crate::container::store::ContainerStore::open(&context.root).ok();
        let store = context.images()?;
        let repos = index::load(&store).map_err(Failure::berth)?;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for name in &self.of.containers {
            if let Some(dir) = containers.as_ref().and_then(|c| c.find(name).ok()) {
                match container_json(&dir) {
                    Ok(v) => found.push(Inspected::Container(v)),
                    Err(e) => errors.push(format!("Error: {e}")),
                }
                continue;
            }
            match inspect::inspect(&store, &repos, name) {
                Ok(doc) => found.push(Inspected::Image(Box::new(doc))),
                Err(inspect::InspectError::Lookup(_)) => {
                    errors.push(format!("Error: No such object: {name}"))
                }
                Err(e) => errors.push(format!("Error response from daemon: {e}")),
            }
        }
        print_inspected(&found, format.as_ref(), errors)
    }
}

/// `--format`: none, or empty, prints the JSON documents.
fn parse_format(format: Option<&str>) -> Result<Option<Format>, Failure> {
    match format {
        Some(f) if !f.is_empty() => Ok(Some(Format::parse(f).map_err(Failure::berth)?)),
        _ => Ok(None),
    }
}

/// One `inspect` result: images keep Docker's field order when printed.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Inspected {
    Image(Box<inspect::ImageInspect>),
    Container(serde_json::Value),
}

/// Prints what was found, then fails with exit 1 and every lookup error, one a line.
fn print_inspected(found: &[Inspected], format: Option<&Format>, errors: Vec<String>) -> CliResult {
    match format {
        None => print(&format!("{}\n", inspect::to_docker_json(&found))),
        Some(f) => {
            let mut out = String::new();
            for doc in found {
                let value = serde_json::to_value(doc).map_err(Failure::berth)?;
                match f.render_json(&value) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => {
                        print(&out);
                        return Err(Failure::berth(e));
                    }
                }
            }
            print(&out);
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure {
            code: 1,
            message: errors.join("\n"),
        })
    }
}
