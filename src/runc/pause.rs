//! `pause` and `resume`: the container's cgroup frozen and thawed.

use super::{Context, RuncError};

pub fn pause(context: &Context, id: &str, frozen: bool) -> Result<i32, RuncError> {
    let c = context.load(id)?;
    if frozen {
        c.pause()?;
    } else {
        c.resume()?;
    }
    Ok(0)
}
