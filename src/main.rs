//! The `berth` binary: parse the command line, run it, and turn failures into one line on
//! stderr plus Docker's exit code.

use clap::Parser;
use clap::error::ErrorKind;

use berth::cli::{self, Cli};

fn main() {
    berth::sys::trace("cli-start");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(0);
            }
            ErrorKind::UnknownArgument => {
                let arg = e
                    .get(clap::error::ContextKind::InvalidArg)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let flag = arg.split(['=', ' ']).next().unwrap_or(&arg);
                eprintln!("unknown flag: {flag}\nSee 'berth --help'.");
                std::process::exit(125);
            }
            ErrorKind::ValueValidation => {
                // Docker's wording: invalid argument "x" for "--pids-limit" flag: <why>.
                let flag = e
                    .get(clap::error::ContextKind::InvalidArg)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let flag = flag.split([' ', '=']).next().unwrap_or(&flag);
                let value = e
                    .get(clap::error::ContextKind::InvalidValue)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let why = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "invalid value".into());
                eprintln!(
                    "invalid argument \"{value}\" for \"{flag}\" flag: {why}\nSee 'berth --help'."
                );
                std::process::exit(125);
            }
            _ => {
                let rendered = e.to_string();
                let first = rendered
                    .lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ");
                eprintln!("berth: {first}\nSee 'berth --help'.");
                std::process::exit(125);
            }
        },
    };
    berth::sys::trace("cli-parsed");
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{}", failure.message);
            failure.code
        }
    };
    berth::sys::trace("cli-exit");
    std::process::exit(code);
}
