//! `update`: new resource limits applied to a running container's cgroup, from
//! `--resources FILE|-` (an OCI `linux.resources` object) or the flags.

use std::io::Read;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::{Context, RuncError};

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// JSON file (or - for stdin) holding linux.resources
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes
    #[arg(long)]
    memory: Option<i64>,
    /// Memory reservation (soft limit) in bytes
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes
    #[arg(long = "memory-swap")]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CPUs the container may use (cpuset)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (cpuset)
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of processes
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Block IO weight (relative), 10 to 1000
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    id: String,
}

pub fn update(context: &Context, args: UpdateArgs) -> Result<i32, RuncError> {
    let container = context.load(&args.id)?;
    let resources = match &args.resources {
        Some(path) => {
            let mut text = String::new();
            let read = if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| RuncError::io("read", path, e))?;
            serde_json::from_str::<LinuxResources>(&text).map_err(|e| {
                RuncError::Usage(format!("parsing resources {}: {e}", path.display()))
            })?
        }
        None => from_flags(&args),
    };
    container.update(&resources)?;
    Ok(0)
}

fn from_flags(args: &UpdateArgs) -> LinuxResources {
    let mut r = LinuxResources::default();
    if args.memory.is_some() || args.memory_reservation.is_some() || args.memory_swap.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(args.memory);
        m.set_reservation(args.memory_reservation);
        m.set_swap(args.memory_swap);
        r.set_memory(Some(m));
    }
    let cpu_given = args.cpu_share.is_some()
        || args.cpu_period.is_some()
        || args.cpu_quota.is_some()
        || args.cpuset_cpus.is_some()
        || args.cpuset_mems.is_some();
    if cpu_given {
        let mut c = LinuxCpu::default();
        c.set_shares(args.cpu_share);
        c.set_period(args.cpu_period);
        c.set_quota(args.cpu_quota);
        c.set_cpus(args.cpuset_cpus.clone());
        c.set_mems(args.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(weight) = args.blkio_weight {
        let mut b = oci_spec::runtime::LinuxBlockIo::default();
        b.set_weight(Some(weight));
        r.set_block_io(Some(b));
    }
    if let Some(limit) = args.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    r
}
