//! The OCI runtime spec: loading a bundle's config.json, and the checks `spawn` makes before it creates anything (so a bad spec fails with a
//! clear 125 error instead of half-way through the container's setup).

use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::RuntimeError;

/// Reads `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec, RuntimeError> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Parse {
        what: path.display().to_string(),
        source: e,
    })
}

/// ociVersion is SemVer, and a runtime must refuse values it does not support (runtime
/// spec, "Valid values"): 1.MINOR.PATCH, with an optional pre-release or build suffix.
fn supported_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts[0] == "1"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What `spawn` requires of a spec before it touches the system.
pub fn validate(spec: &Spec) -> Result<(), RuntimeError> {
    let bad = |m: &str| Err(RuntimeError::InvalidSpec(m.into()));
    if !supported_version(spec.version()) {
        return Err(RuntimeError::InvalidSpec(format!(
            "unsupported ociVersion {:?} (this runtime implements 1.x.y)",
            spec.version()
        )));
    }
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
    let new_user = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_user && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        return bad("user namespaces enabled, but no uid mappings found");
    }
    if new_user && linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        return bad("user namespaces enabled, but no gid mappings found");
    }
    if !nss.iter().any(|n| n.typ() == LinuxNamespaceType::User)
        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
    {
        return bad(
            "user namespace mappings specified, but USER namespace isn't enabled in the config",
        );
    }
    if linux.time_offsets().as_ref().is_some_and(|o| !o.is_empty())
        && !nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Time && n.path().is_none())
    {
        return bad("timeOffsets are given without a new time namespace");
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
mod version_tests {
    #[test]
    fn oci_versions() {
        for ok in ["1.0.0", "1.2.0", "1.0.2-dev", "1.1.0-rc.1", "1.0.0+build"] {
            assert!(super::supported_version(ok), "{ok}");
        }
        for bad in ["invalid", "", "2.0.0", "1.0", "1.x.0", "v1.0.0"] {
            assert!(!super::supported_version(bad), "{bad}");
        }
    }
}
