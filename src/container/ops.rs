//! Operations on existing containers: stop, kill, wait, remove, pause, rename, the pids in a
//! container. Each takes the container's lock, so concurrent commands on one container
//! serialise; state is always re-derived from the kernel first.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::ContainerError;
use super::lifecycle::{current_state, load_spec};
use super::record::{State, Status};
use super::removal;
use super::store::{ContainerDir, ContainerStore};

/// Parses `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ContainerError::InvalidFlag(format!("Invalid signal: {s}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| ContainerError::InvalidFlag(format!("Invalid signal: {s}")))
}

/// Sends `signal` to the container's init.
pub fn kill(dir: &ContainerDir, signal: i32) -> Result<(), ContainerError> {
    let _lock = dir.lock()?;
    let state = current_state(dir)?;
    if !state.status.is_running() {
        return Err(ContainerError::NotRunning(dir.id.clone()));
    }
    send(&state, signal);
    if state.status == Status::Paused && signal == libc::SIGKILL {
        // A frozen process cannot die; thaw so the kill lands.
        let _ = super::store::oci_runtime()
            .load(&dir.id)
            .map(|c| c.resume());
    }
    Ok(())
}

/// Signals the container's init, if it still is that process: a pid whose start time no
/// longer matches belongs to another process now.
fn send(state: &State, signal: i32) {
    if state.pid > 0 && crate::sys::process_start_time(state.pid) == Some(state.pid_start) {
        // SAFETY: kill(2) of the container's init, checked against its start time just now.
        unsafe { libc::kill(state.pid, signal) };
    }
}

/// Docker's stop: the image's STOPSIGNAL (default SIGTERM), then SIGKILL after `timeout`.
/// Killing PID 1 of a pid namespace takes every process of the container with it.
pub fn stop(dir: &ContainerDir, timeout: Duration) -> Result<(), ContainerError> {
    let _lock = dir.lock()?;
    let state = current_state(dir)?;
    if !state.status.is_running() {
        return Ok(());
    }
    let record = dir.record()?;
    let signal = record
        .stop_signal
        .as_deref()
        .map(parse_signal)
        .transpose()?
        .unwrap_or(libc::SIGTERM);
    if state.status == Status::Paused {
        let _ = super::store::oci_runtime()
            .load(&dir.id)
            .map(|c| c.resume());
    }
    send(&state, signal);
    if !wait_for_exit(dir, &state, timeout) {
        send(&state, libc::SIGKILL);
        wait_for_exit(dir, &state, Duration::from_secs(10));
    }
    settle(dir, &state)
}

/// Waits until the container's init has exited and its monitor has recorded it (or is gone).
fn wait_for_exit(dir: &ContainerDir, state: &State, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let container = pidfd(state.pid, state.pid_start);
    let monitor = pidfd(state.monitor_pid, state.monitor_start);
    // The monitor records the exit after the container dies: waiting for the monitor (when it
    // lives) means the state file is final when we return. Then the container itself, in case
    // the monitor went first (killed).
    for fd in [monitor, container].into_iter().flatten() {
        let left = deadline.saturating_duration_since(Instant::now());
        if !poll_readable(&fd, left) {
            return false;
        }
    }
    let _ = dir;
    true
}

/// After the container died: if no monitor recorded it (the monitor was killed), clean up in
/// its place so nothing is left running or mounted; an exit the monitor left aside (no room
/// in the store) is recorded. Fails when the exit cannot be written.
fn settle(dir: &ContainerDir, before: &State) -> Result<(), ContainerError> {
    let mut state = dir.state()?;
    if !state.status.is_running() {
        return Ok(());
    }
    let monitor_alive = crate::sys::process_start_time(before.monitor_pid)
        == Some(before.monitor_start)
        && before.monitor_pid > 0;
    if monitor_alive {
        return Ok(());
    }
    if let Some(exited) = dir.pending_exit(&state) {
        // The monitor finished its work and only the record is missing.
        dir.write_state(&exited)?;
        dir.forget_pending_exit();
        return Ok(());
    }
    if let Ok(spec) = load_spec(dir) {
        // What the monitor would have read before the cgroup goes.
        state.oom_killed = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref())
            .is_some_and(crate::runtime::cgroup_oom_killed);
        let _ = super::store::release_runtime(&dir.id, &spec);
    }
    let _ = crate::network::disconnect(&dir.id, Some(before.pid));
    state.status = Status::Exited;
    state.exit_code = state.exit_code.or(Some(137));
    state.finished_at = Some(crate::time::Timestamp::now().rfc3339_nano());
    dir.write_state(&state)?;
    let _ = std::fs::remove_dir_all(dir.runtime_dir());
    Ok(())
}

/// Blocks until the container is not running; returns its exit code.
///
/// Reads the recorded state, not `current_state`: between the container's death and its
/// monitor recording the exit, `current_state` already reports it exited, with 255 for the
/// code nobody recorded yet (`kill` then `wait` hit that window). `wait_for_exit` waits for
/// the monitor's record, and `settle` writes one if the monitor is gone.
///
/// An exit the monitor left aside because the store had no room counts as recorded; one
/// that can be written nowhere fails the wait instead of spinning on it.
pub fn wait(dir: &ContainerDir) -> Result<i32, ContainerError> {
    loop {
        let state = dir.state()?;
        if !state.status.is_running() {
            return Ok(state.exit_code.unwrap_or(0));
        }
        if let Some(exited) = dir.pending_exit(&state) {
            return Ok(exited.exit_code.unwrap_or(0));
        }
        wait_for_exit(dir, &state, Duration::from_secs(3600));
        settle(dir, &state)?;
    }
}

/// Removes a container; a running one only with `force` (killed first). The anonymous
/// volumes that could not be removed with it are returned, to warn about.
pub fn remove(
    store_root: &Path,
    dir: &ContainerDir,
    force: bool,
    volumes: bool,
) -> Result<Vec<ContainerError>, ContainerError> {
    // The lock is held until the files are gone, so a concurrent start cannot slip in
    // between, nor a rename (the record is read under it, with the name that goes).
    let _lock = dir.lock()?;
    let record = dir.record().map_err(|e| gone_if_missing(dir, e))?;
    {
        let state = current_state(dir)?;
        if state.status.is_running() {
            if !force {
                return Err(ContainerError::RemoveRunning(dir.id.clone()));
            }
            // A store that cannot take the container away (read-only) fails the removal
            // before the container is killed for it.
            drop(removal::writable(store_root, dir)?);
            if state.status == Status::Paused {
                let _ = super::store::oci_runtime()
                    .load(&dir.id)
                    .map(|c| c.resume());
            }
            send(&state, libc::SIGKILL);
            wait_for_exit(dir, &state, Duration::from_secs(10));
            // An exit that cannot be recorded goes with the container: a store that cannot
            // take the container away fails below.
            let _ = settle(dir, &state);
        }
        if let Ok(spec) = load_spec(dir) {
            let _ = super::store::release_runtime(&dir.id, &spec);
        }
        let _ = crate::network::disconnect(&dir.id, None);
    }
    removal::remove_files(store_root, dir, &record, volumes)
}

/// A container whose record vanished while this command waited for its lock was removed
/// meanwhile: "No such container", not the path of a file that is not there.
fn gone_if_missing(dir: &ContainerDir, e: ContainerError) -> ContainerError {
    match e {
        ContainerError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ContainerError::NotFound(dir.id.clone())
        }
        e => e,
    }
}

pub fn pause(dir: &ContainerDir, frozen: bool) -> Result<(), ContainerError> {
    let _lock = dir.lock()?;
    let mut state = current_state(dir)?;
    match (state.status, frozen) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(ContainerError::AlreadyPaused(dir.id.clone())),
        (Status::Running, false) => return Err(ContainerError::NotPaused(dir.id.clone())),
        _ => return Err(ContainerError::NotRunning(dir.id.clone())),
    }
    let container = super::store::oci_runtime().load(&dir.id)?;
    if frozen {
        container.pause()?;
    } else {
        container.resume()?;
    }
    state.status = if frozen {
        Status::Paused
    } else {
        Status::Running
    };
    if let Err(e) = dir.write_state(&state) {
        // Every later command goes by the recorded state: what it cannot say is undone.
        let _ = if frozen {
            container.resume()
        } else {
            container.pause()
        };
        return Err(e);
    }
    Ok(())
}

/// Renames a container under the store lock only (so no other container takes the name
/// meanwhile), not the container's own lock, which a `stop` holds for its whole timeout:
/// Docker's rename does not wait for a stop either. The record is read under the store lock,
/// which the other writers of a record's name take too: `rm` reads the name it releases
/// under it, `update` re-reads the name under it before writing the record back.
pub fn rename(store: &ContainerStore, dir: &ContainerDir, new: &str) -> Result<(), ContainerError> {
    let new = new.trim_start_matches('/');
    super::names::check(new)?;
    let _lock = store.lock()?;
    let mut record = dir.record().map_err(|e| gone_if_missing(dir, e))?;
    if let Some(owner) = store.name_owner(new)? {
        return Err(ContainerError::NameConflict {
            name: new.to_string(),
            id: owner,
        });
    }
    let old = std::mem::replace(&mut record.name, new.to_string());
    store.claim_name(new, &dir.id)?;
    if let Err(e) = dir.write_record(&record) {
        let _ = store.release_name(new, &dir.id);
        return Err(e);
    }
    store.release_name(&old, &dir.id)
}

/// Host pids of every process in the container (through its cgroup).
pub fn pids(dir: &ContainerDir) -> Result<Vec<i32>, ContainerError> {
    let state = current_state(dir)?;
    if !state.status.is_running() {
        return Err(ContainerError::NotRunning(dir.id.clone()));
    }
    let container = super::store::oci_runtime().load(&dir.id)?;
    Ok(container
        .processes()?
        .into_iter()
        .map(|p| p.as_raw())
        .collect())
}

fn pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    if pid <= 0 || crate::sys::process_start_time(pid) != Some(start) {
        return None;
    }
    let fd = crate::sys::syscall::pidfd_open(pid).ok()?;
    // The pid could have been recycled between the check and the open: check again.
    (crate::sys::process_start_time(pid) == Some(start)).then_some(fd)
}

fn poll_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::{State, Status};

    /// The container's init is dead but its monitor has not recorded the exit yet: `wait`
    /// waits for the record instead of guessing a code.
    #[test]
    fn wait_takes_the_monitors_record_of_an_exit_it_has_not_written_yet() {
        let path = std::env::temp_dir().join(format!("berth-wait-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        let dir = ContainerDir {
            id: "0".repeat(64),
            path: path.clone(),
        };
        let mut dead = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let dead_pid = dead.id() as i32;
        let dead_start = crate::sys::process_start_time(dead_pid).unwrap();
        dead.kill().unwrap();
        dead.wait().unwrap();
        let mut monitor = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let monitor_pid = monitor.id() as i32;
        let running = State {
            status: Status::Running,
            pid: dead_pid,
            pid_start: dead_start,
            monitor_pid,
            monitor_start: crate::sys::process_start_time(monitor_pid).unwrap(),
            ..State::default()
        };
        dir.write_state(&running).unwrap();
        let recorder = {
            let dir = ContainerDir {
                id: dir.id.clone(),
                path: path.clone(),
            };
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let exited = State {
                    status: Status::Exited,
                    exit_code: Some(137),
                    ..running
                };
                dir.write_state(&exited).unwrap();
                monitor.kill().unwrap();
                monitor.wait().unwrap();
            })
        };
        let code = wait(&dir);
        recorder.join().unwrap();
        std::fs::remove_dir_all(&path).unwrap();
        assert_eq!(code.unwrap(), 137);
    }
}
