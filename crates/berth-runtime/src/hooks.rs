//! OCI hooks: programs the spec names for points of a container's life, each run with the
//! container's state JSON on its stdin and killed at its timeout. `prestart` and
//! `createRuntime` run in the runtime's namespaces once the container's namespaces exist
//! and before anything of the container runs (Docker's networking is such a hook);
//! `poststart` after the user's program started; `poststop` when the container is deleted.
//! `createContainer` and `startContainer`, which the spec runs inside the container's
//! namespaces, are refused rather than silently skipped.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

use crate::{RuntimeError, State};

/// The points of the lifecycle at which hooks run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Point {
    Prestart,
    CreateRuntime,
    Poststart,
    Poststop,
}

impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::Prestart => "prestart",
            Point::CreateRuntime => "createRuntime",
            Point::Poststart => "poststart",
            Point::Poststop => "poststop",
        }
    }

    fn hooks(self, spec: &Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks() else {
            return Vec::new();
        };
        #[allow(deprecated)]
        let list = match self {
            Point::Prestart => h.prestart(),
            Point::CreateRuntime => h.create_runtime(),
            Point::Poststart => h.poststart(),
            Point::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Fails for hooks berth cannot run at their point.
pub(crate) fn check(spec: &Spec) -> Result<(), RuntimeError> {
    if let Some(h) = spec.hooks() {
        let inside = [
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
        ];
        for (name, list) in inside {
            if list.as_ref().is_some_and(|l| !l.is_empty()) {
                return Err(RuntimeError::InvalidSpec(format!(
                    "{name} hooks are not supported yet"
                )));
            }
        }
    }
    Ok(())
}

/// Whether `spec` has hooks at `point`.
pub(crate) fn any(spec: &Spec, point: Point) -> bool {
    !point.hooks(spec).is_empty()
}

/// Runs the hooks of `point` in order; the first failure stops them.
pub(crate) fn run(spec: &Spec, point: Point, state: &State) -> Result<(), RuntimeError> {
    let hooks = point.hooks(spec);
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| RuntimeError::Parse {
        what: "container state".into(),
        source: e,
    })?;
    for hook in &hooks {
        run_one(hook, point, &json)?;
    }
    Ok(())
}

fn run_one(hook: &Hook, point: Point, state: &[u8]) -> Result<(), RuntimeError> {
    let path = hook.path();
    let failed = |why: String| RuntimeError::Hook {
        point: point.name(),
        path: path.clone(),
        why,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    // args[0] is the program's own name, as execv takes it.
    if let Some(arg0) = args.first() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|kv| kv.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not a failure.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait().map_err(|e| failed(e.to_string()))? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(failed(format!("{status}, stderr: {}", err.trim())));
            }
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "timed out after {}s",
                    hook.timeout().unwrap_or(0)
                )));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}
