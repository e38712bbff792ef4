//! `delete [--force] ID`: a stopped container's record and cgroup go; `--force` kills a
//! running one first, and succeeds for an id that does not exist (containerd relies on it).

use super::{Context, RuncError};
use crate::runtime::RuntimeError;

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is not stopped; no error if it does not exist
    #[arg(short, long)]
    force: bool,
    id: String,
}

pub fn delete(context: &Context, args: DeleteArgs) -> Result<i32, RuncError> {
    match context.runtime.load(&args.id) {
        Ok(c) => c.delete(args.force)?,
        Err(RuntimeError::NotFound(_)) if args.force => {}
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
