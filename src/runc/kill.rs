//! `kill ID [SIGNAL]`: SIGTERM by default; names with or without `SIG`, or numbers.

use std::str::FromStr;

use nix::sys::signal::Signal;

use super::{Context, RuncError};

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container, not only its init
    #[arg(short, long)]
    all: bool,
    id: String,
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

pub fn kill(context: &Context, args: KillArgs) -> Result<i32, RuncError> {
    let signal = parse_signal(&args.signal)?;
    context.load(&args.id)?.kill(signal, args.all)?;
    Ok(0)
}

fn parse_signal(s: &str) -> Result<Signal, RuncError> {
    let bad = || RuncError::Usage(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
