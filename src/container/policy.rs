//! The default security policy every container starts from, kept as data in
//! `runtime-specs/`: the OCI spec template and Docker's default seccomp profile.

use oci_spec::runtime::Spec;

use super::ContainerError;
use super::seccomp_profile::default_seccomp;

const DEFAULT_SPEC: &str = include_str!("../../runtime-specs/default-spec.json");

/// The default spec template (runtime-specs/default-spec.json) with the default seccomp
/// profile resolved for its capabilities. The caller adds the image config and flags
/// (and recomputes `linux.seccomp` with `default_seccomp` after `--cap-add`).
pub fn default_spec() -> Result<Spec, ContainerError> {
    let mut spec: Spec =
        serde_json::from_str(DEFAULT_SPEC).map_err(|e| ContainerError::Corrupt {
            path: "runtime-specs/default-spec.json".into(),
            source: e,
        })?;
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .map(berth_runtime::caps::names)
        .unwrap_or_default();
    let sc = default_seccomp(&caps)?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(Some(sc));
        // Docker masks every CPU's thermal_throttle directory too; which exist is the host's.
        let mut masked = linux.masked_paths().clone().unwrap_or_default();
        masked.extend(thermal_throttle_dirs());
        linux.set_masked_paths(Some(masked));
    }
    Ok(spec)
}

/// `/sys/devices/system/cpu/cpuN/thermal_throttle` of each of the host's CPUs that has one.
fn thermal_throttle_dirs() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu") else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("cpu"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join("thermal_throttle"))
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_docker_like() {
        let s = default_spec().unwrap();
        berth_runtime::spec::validate(&s).unwrap();
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
        let sc = s.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        let names: Vec<&String> = sc
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names())
            .collect();
        assert!(names.iter().any(|n| *n == "read"));
        assert!(!names.iter().any(|n| *n == "mount"));
    }
}
