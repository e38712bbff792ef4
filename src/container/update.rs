//! `update`: new resource limits for an existing container, applied to its cgroup while it
//! runs and written into its spec and record, so that the next start keeps them and
//! `inspect` shows them.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::ContainerError;
use super::lifecycle::{current_state, load_spec};
use super::store::{ContainerDir, ContainerStore};

/// What `update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    pub memory: Option<i64>,
    /// Memory plus swap; -1 for unlimited.
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub blkio_weight: Option<u16>,
    /// 0 or less: unlimited.
    pub pids_limit: Option<i64>,
}

/// Applies `options` to the container: its running cgroup first (a value the kernel
/// refuses leaves everything as it was), then its spec and record.
pub fn update(
    store: &ContainerStore,
    dir: &ContainerDir,
    options: &UpdateOptions,
) -> Result<(), ContainerError> {
    let _lock = dir.lock()?;
    let mut record = dir.record()?;
    let mut spec = load_spec(dir)?;
    let cannot = |message: String| ContainerError::CannotUpdate {
        id: dir.id.clone(),
        message,
    };
    let host = &mut record.host_config;
    if let Some(memory) = options.memory {
        // Docker's rule, as it words it: a new limit above the recorded memory+swap needs
        // a new memory+swap too (an unset one, 0, counts as below any limit).
        if options.memory_swap.is_none() && memory > host.memory_swap {
            return Err(cannot(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into(),
            ));
        }
        host.memory = memory;
    }
    if let Some(swap) = options.memory_swap {
        host.memory_swap = swap;
    }
    if let Some(nano) = options.nano_cpus {
        host.nano_cpus = nano;
    }
    if let Some(shares) = options.cpu_shares {
        host.cpu_shares = shares as i64;
    }
    if let Some(cpus) = &options.cpuset_cpus {
        host.cpuset_cpus = cpus.clone();
    }
    if let Some(mems) = &options.cpuset_mems {
        host.cpuset_mems = mems.clone();
    }
    if let Some(weight) = options.blkio_weight {
        host.blkio_weight = weight;
    }
    if let Some(limit) = options.pids_limit {
        host.pids_limit = (limit > 0).then_some(limit);
    }

    // What changes, as the runtime applies it.
    let mut delta = LinuxResources::default();
    if options.memory.is_some() || options.memory_swap.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit((host.memory != 0).then_some(host.memory));
        m.set_swap((host.memory_swap != 0).then_some(host.memory_swap));
        delta.set_memory(Some(m));
    }
    let mut cpu = LinuxCpu::default();
    if let Some(nano) = options.nano_cpus {
        let period: i64 = 100_000;
        cpu.set_quota(Some(nano * period / 1_000_000_000));
        cpu.set_period(Some(period as u64));
    }
    cpu.set_shares(options.cpu_shares);
    cpu.set_cpus(options.cpuset_cpus.clone());
    cpu.set_mems(options.cpuset_mems.clone());
    if cpu != LinuxCpu::default() {
        delta.set_cpu(Some(cpu));
    }
    if let Some(weight) = options.blkio_weight {
        let mut blkio = LinuxBlockIo::default();
        blkio.set_weight(Some(weight));
        delta.set_block_io(Some(blkio));
    }
    if let Some(limit) = options.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit.max(0));
        delta.set_pids(Some(pids));
    }

    if current_state(dir)?.status.is_running() {
        super::store::oci_runtime()
            .load(&dir.id)
            .and_then(|c| c.update(&delta))
            .map_err(|e| cannot(e.to_string()))?;
    }

    // The spec the next start reads.
    if let Some(linux) = spec.linux_mut() {
        let mut resources = linux.resources().clone().unwrap_or_default();
        if let Some(m) = delta.memory() {
            let mut memory = resources.memory().unwrap_or_default();
            memory.set_limit(m.limit());
            memory.set_swap(m.swap());
            resources.set_memory(Some(memory));
        }
        if let Some(c) = delta.cpu() {
            let mut cpu = resources.cpu().clone().unwrap_or_default();
            if c.quota().is_some() {
                cpu.set_quota(c.quota());
                cpu.set_period(c.period());
            }
            if c.shares().is_some() {
                cpu.set_shares(c.shares());
            }
            if c.cpus().is_some() {
                cpu.set_cpus(c.cpus().clone());
            }
            if c.mems().is_some() {
                cpu.set_mems(c.mems().clone());
            }
            resources.set_cpu(Some(cpu));
        }
        if delta.block_io().is_some() {
            let mut blkio = resources.block_io().clone().unwrap_or_default();
            blkio.set_weight(options.blkio_weight);
            resources.set_block_io(Some(blkio));
        }
        if delta.pids().is_some() {
            resources.set_pids(*delta.pids());
        }
        linux.set_resources(Some(resources));
    }
    let bytes = serde_json::to_vec(&spec).expect("spec serialises");
    crate::sys::replace_file(&dir.spec_path(), &bytes, 0o600).map_err(|source| {
        ContainerError::Io {
            path: dir.spec_path(),
            source,
        }
    })?;
    // `rename` changes the record under the store lock only: the name is read back under
    // it, so a rename done meanwhile is not undone.
    let _names = store.lock()?;
    record.name = dir.record()?.name;
    dir.write_record(&record)
}
