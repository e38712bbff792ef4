//! Docker-format seccomp profiles (`--security-opt seccomp=FILE`, and the default profile in
//! `runtime-specs/seccomp-default.json`) turned into the OCI `linux.seccomp` form the runtime
//! compiles. A Docker concern: the profile's `includes`/`excludes` are resolved against the
//! container's capabilities and this machine's architecture and kernel, as dockerd does.
//!
//! Self-contained (serde, oci-spec, nix): the runtime crate's seccomp tests include this file.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;

const DEFAULT_PROFILE: &str = include_str!("../../runtime-specs/seccomp-default.json");

#[cfg(target_arch = "x86_64")]
const ARCH_NAME: &str = "amd64";
#[cfg(target_arch = "aarch64")]
const ARCH_NAME: &str = "arm64";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH_NAME: &str = std::env::consts::ARCH;

/// A profile that is not valid JSON of Docker's profile format.
#[derive(Debug, thiserror::Error)]
#[error("parsing seccomp profile: {0}")]
pub struct ProfileError(#[from] serde_json::Error);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerProfile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<DockerSyscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerSyscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The default profile (runtime-specs/seccomp-default.json) for a process with `caps`
/// (the bounding set, e.g. after `--cap-add`), in OCI form.
pub fn default_seccomp(caps: &[String]) -> Result<LinuxSeccomp, ProfileError> {
    docker_profile_to_oci(DEFAULT_PROFILE, caps)
}

/// Converts a Docker-format seccomp profile (`--security-opt seccomp=FILE`) to the OCI
/// `linux.seccomp` form, resolving its `includes`/`excludes` against the container's
/// capabilities and this machine's architecture and kernel, as dockerd does.
pub fn docker_profile_to_oci(json: &str, caps: &[String]) -> Result<LinuxSeccomp, ProfileError> {
    let profile: DockerProfile = serde_json::from_str(json)?;
    let kernel = kernel_version();
    let mut out = Vec::new();
    for sc in profile.syscalls {
        let inc = &sc.includes;
        let exc = &sc.excludes;
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == ARCH_NAME) {
            continue;
        }
        if !inc.caps.is_empty() && !inc.caps.iter().all(|c| caps.contains(c)) {
            continue;
        }
        if let Some(min) = &inc.min_kernel
            && kernel < parse_version(min)
        {
            continue;
        }
        if exc.arches.iter().any(|a| a == ARCH_NAME) || exc.caps.iter().any(|c| caps.contains(c)) {
            continue;
        }
        let mut names = sc.names;
        names.extend(sc.name);
        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(sc.action);
        s.set_errno_ret(sc.errno_ret);
        s.set_args(sc.args);
        out.push(s);
    }
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(profile.default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_syscalls(Some(out));
    Ok(seccomp)
}

fn parse_version(s: &str) -> (u32, u32) {
    let mut it = s.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .map(|u| parse_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}
