//! `events`: the container's resource usage and OOM notifications as runc prints them, one
//! JSON object a line (`{"type":"stats","id":…,"data":{…}}`, `{"type":"oom","id":…}`):
//! with `--stats` one stats event, else one every `--interval` and each OOM as it happens,
//! until the container stops.

use std::io::Write;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::json;

use super::{Context, RuncError};
use crate::runtime::cgroups::oom::OomNews;
use crate::runtime::{Container, Status};

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Display the container's stats once, then exit
    #[arg(long)]
    stats: bool,
    /// How often to report the stats (a Go duration: 500ms, 5s, 1m30s)
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    id: String,
}

pub fn events(context: &Context, args: EventsArgs) -> Result<i32, RuncError> {
    if args.interval.is_zero() {
        return Err(RuncError::Usage(
            "duration interval must be greater than 0".into(),
        ));
    }
    let container = context.load(&args.id)?;
    if container.status() == Status::Stopped {
        return Err(RuncError::Usage(format!(
            "container with id {} is not running",
            args.id
        )));
    }
    if args.stats {
        emit_stats(&container)?;
        return Ok(0);
    }
    let mut watch = container.oom_watch()?;
    let mut next = Instant::now() + args.interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let woke = match &watch {
            Some(w) => {
                let mut fds = [PollFd::new(w.fd(), PollFlags::POLLIN)];
                let ms = PollTimeout::try_from(wait.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, ms) {
                    Ok(n) => n > 0,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => {
                        return Err(RuncError::io("poll", "the OOM watch", e.into()));
                    }
                }
            }
            None => {
                std::thread::sleep(wait);
                false
            }
        };
        if woke && let Some(w) = &mut watch {
            match w.read()? {
                OomNews::Oom(_) => emit(&json!({"type": "oom", "id": container.id()}))?,
                // runc stops there: no process, no more events.
                OomNews::Gone => return Ok(0),
                OomNews::Nothing => {}
            }
            continue;
        }
        if Instant::now() >= next {
            next += args.interval;
            if container.status() == Status::Stopped {
                return Ok(0);
            }
            emit_stats(&container)?;
        }
    }
}

fn emit_stats(container: &Container) -> Result<(), RuncError> {
    let stats = container.stats()?;
    emit(&json!({"type": "stats", "id": container.id(), "data": stats}))
}

/// One line on stdout, flushed (a reader waits on each event).
fn emit(event: &serde_json::Value) -> Result<(), RuncError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{event}")
        .and_then(|()| out.flush())
        .map_err(|e| RuncError::io("write", "stdout", e))?;
    Ok(())
}

/// Go's time.ParseDuration: a sequence of decimal numbers, each with a unit (ns, us, µs,
/// ms, s, m, h), e.g. `1m30s`, `1.5s`, `300ms`; `0` alone.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err(), "a number needs its unit");
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("").is_err());
    }
}
