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
    }
    Ok(spec)
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
