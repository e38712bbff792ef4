//! `state`: runc's JSON of one container (the OCI state plus rootfs, created and owner).

use std::path::Path;

use serde::Serialize;

use super::{Context, RuncError};
use crate::runtime::{Container, Status};
use crate::time::Timestamp;

/// The state as runc prints it (`state`, and each entry of `list --format json`).
#[derive(Serialize)]
pub(super) struct RuncState {
    #[serde(rename = "ociVersion")]
    oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

impl RuncState {
    pub fn of(c: &Container, root: &Path) -> RuncState {
        let st = c.state();
        let created = c
            .created()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let created = Timestamp {
            secs: created.as_secs() as i64,
            nanos: created.subsec_nanos(),
        };
        RuncState {
            oci_version: st.oci_version,
            id: st.id,
            // runc reports 0 once the init is gone.
            pid: if st.status == Status::Stopped {
                0
            } else {
                st.pid.unwrap_or(0)
            },
            status: st.status.to_string(),
            bundle: st.bundle.display().to_string(),
            rootfs: c.rootfs().display().to_string(),
            created: created.rfc3339_nano(),
            owner: owner_of(&root.join(c.id())),
            annotations: st.annotations,
        }
    }
}

/// The name of the user owning the container's state directory, as runc reports it.
fn owner_of(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

pub fn state(context: &Context, id: &str) -> Result<i32, RuncError> {
    let c = context.load(id)?;
    let json = serde_json::to_string_pretty(&RuncState::of(&c, context.runtime.root()))
        .map_err(|e| RuncError::Usage(e.to_string()))?;
    println!("{json}");
    Ok(0)
}
