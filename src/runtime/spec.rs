//! The OCI runtime spec: the embedded default template, loading a bundle's config.json,
//! and the checks `spawn` makes before it creates anything (so a bad spec fails with a
//! clear 125 error instead of half-way through the container's setup).

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::RuntimeError;
use super::caps;
use super::seccomp::default_seccomp;

const DEFAULT_SPEC: &str = include_str!("../../runtime-specs/default-spec.json");

/// The default spec template (runtime-specs/default-spec.json) with the default seccomp
/// profile resolved for its capabilities. The caller adds the image config and flags
/// (and recomputes `linux.seccomp` with `default_seccomp` after `--cap-add`).
pub fn default_spec() -> Result<Spec, RuntimeError> {
    let mut spec: Spec = serde_json::from_str(DEFAULT_SPEC).map_err(|e| RuntimeError::Parse {
        what: "runtime-specs/default-spec.json".into(),
        source: e,
    })?;
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .map(caps::names)
        .unwrap_or_default();
    let sc = default_seccomp(&caps)?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(Some(sc));
    }
    Ok(spec)
}

/// Reads `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec, RuntimeError> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Parse {
        what: path.display().to_string(),
        source: e,
    })
}

/// What `spawn` requires of a spec before it touches the system.
pub fn validate(spec: &Spec) -> Result<(), RuntimeError> {
    let bad = |m: &str| Err(RuntimeError::InvalidSpec(m.into()));
    let Some(process) = spec.process() else {
        return bad("process is missing");
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args is empty");
    }
    if !process.cwd().is_absolute() {
        return bad("process.cwd must be absolute");
    }
    if spec.root().is_none() {
        return bad("root is missing");
    }
    let Some(linux) = spec.linux() else {
        return bad("linux section is missing");
    };
    let nss = linux.namespaces().clone().unwrap_or_default();
    if !nss.iter().any(|n| n.typ() == LinuxNamespaceType::Mount) {
        return bad("a mount namespace is required (pivot_root would change the host's root)");
    }
    if nss.iter().any(|n| n.typ() == LinuxNamespaceType::User) {
        return bad("user namespaces are not supported yet");
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(RuntimeError::InvalidSpec(format!(
                "mount destination {} is not absolute",
                m.destination().display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_docker_like() {
        let s = default_spec().unwrap();
        validate(&s).unwrap();
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
