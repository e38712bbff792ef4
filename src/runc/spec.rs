//! `spec`: a new config.json in the bundle, from the runtime spec's defaults (a root-owned
//! `sh` on a pty, `rootfs` beside it, read-only root), as `runc spec` writes one.

use std::path::PathBuf;

use serde::Serialize;

use super::RuncError;

#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json in
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Accepted for runc's command line; rootless specs are not generated
    #[arg(long)]
    rootless: bool,
}

pub fn spec(args: SpecArgs) -> Result<i32, RuncError> {
    if args.rootless {
        return Err(RuncError::Usage(
            "rootless specs are not supported yet".into(),
        ));
    }
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(RuncError::Usage(
            "File config.json exists. Remove it first".into(),
        ));
    }
    let spec = oci_spec::runtime::Spec::default();
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    spec.serialize(&mut ser)
        .map_err(|e| RuncError::Usage(e.to_string()))?;
    std::fs::write(&path, out).map_err(|e| RuncError::io("write", &path, e))?;
    Ok(0)
}
