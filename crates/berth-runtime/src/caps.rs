//! Capabilities: the five sets from `process.capabilities`, as bit masks computed in the
//! parent and applied in the child with raw prctl/capset calls (no allocation after clone).

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::RuntimeError;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// Highest capability number the running kernel knows.
    pub last_cap: u32,
}

/// The capability names of a set as they appear in the spec ("CAP_CHOWN"), e.g. to pick
/// the seccomp rules that depend on them.
pub fn names(set: &Capabilities) -> Vec<String> {
    set.iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn mask(set: &Option<Capabilities>) -> Result<u64, RuntimeError> {
    let mut m = 0u64;
    for name in set.as_ref().map(names).unwrap_or_default() {
        let cap = caps::Capability::from_str(&name)
            .map_err(|_| RuntimeError::InvalidSpec(format!("unknown capability {name}")))?;
        m |= 1u64 << cap.index();
    }
    Ok(m)
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

pub(crate) fn from_spec(c: Option<&LinuxCapabilities>) -> Result<CapSets, RuntimeError> {
    let Some(c) = c else {
        return Ok(CapSets {
            last_cap: last_cap(),
            ..Default::default()
        });
    };
    Ok(CapSets {
        bounding: mask(c.bounding())?,
        effective: mask(c.effective())?,
        permitted: mask(c.permitted())?,
        inheritable: mask(c.inheritable())?,
        ambient: mask(c.ambient())?,
        last_cap: last_cap(),
    })
}

/// Drops every capability not in the bounding set. Needs CAP_SETPCAP, so it runs before
/// the uid change.
pub(crate) fn drop_bounding(s: &CapSets) -> Result<(), i32> {
    for cap in 0..=s.last_cap.min(63) {
        if s.bounding & (1u64 << cap) == 0 {
            // SAFETY: plain prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r < 0 {
                let e = nix::errno::Errno::last_raw();
                if e != libc::EINVAL {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Sets effective/permitted/inheritable, then the ambient set (which must be a subset of
/// permitted ∩ inheritable, so it comes last).
pub(crate) fn apply(s: &CapSets) -> Result<(), (&'static str, i32)> {
    berth_sys::syscall::capset(s.effective, s.permitted, s.inheritable)
        .map_err(|e| ("capset", e))?;
    // SAFETY: integer-only prctl calls.
    unsafe {
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
        {
            // Kernels without ambient capabilities: nothing to clear.
            if s.ambient == 0 {
                return Ok(());
            }
            return Err(("ambient", nix::errno::Errno::last_raw()));
        }
        for cap in 0..=s.last_cap.min(63) {
            if s.ambient & (1u64 << cap) != 0
                && libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                ) < 0
            {
                return Err(("ambient", nix::errno::Errno::last_raw()));
            }
        }
    }
    Ok(())
}

/// Whether this process may raise hard rlimits.
pub(crate) fn has_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}
