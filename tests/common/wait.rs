//! Running a command under a time limit, and polling for a condition.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `limit` scaled for a slow machine: times `BERTH_TEST_TIME_SCALE` (default 1). The test VM
/// under emulation (vagrant/qemu-vm, TCG) sets it, where everything takes 5–10× longer: a
/// time limit there says how long to wait before giving up, and an assertion on a duration
/// keeps its proportion to the machine's speed.
pub fn slow(limit: Duration) -> Duration {
    let scale = std::env::var("BERTH_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(1);
    limit * scale
}

/// Runs `cmd` with piped output; panics (after killing it) if it takes longer than `timeout`.
pub fn run_timeout(cmd: Command, timeout: Duration) -> Output {
    match run_timeout_quiet(cmd, timeout) {
        Ok(out) => out,
        Err(msg) => panic!("{msg}"),
    }
}

pub fn run_timeout_quiet(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawn {desc}: {e}"))?;
    let out = collect(&mut child);
    let timeout = slow(timeout);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let (stdout, stderr) = out.join().expect("reader threads");
            return Ok(Output {
                status,
                stdout,
                stderr,
            });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{desc} did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub type Collected = std::thread::JoinHandle<(Vec<u8>, Vec<u8>)>;

/// Reads a child's stdout and stderr to the end in the background.
pub fn collect(child: &mut Child) -> Collected {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        (out, err.join().unwrap_or_default())
    })
}

/// Polls `cond` every 50 ms until it holds; false on timeout (scaled by [`slow`]).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + slow(timeout);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
