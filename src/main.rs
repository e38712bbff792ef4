//! The `berth` binary: parse the command line, run it, and turn failures into one line on
//! stderr plus Docker's exit code.

use clap::Parser;
use clap::error::{ContextKind, ErrorKind};

use berth::cli::{self, Cli};

fn main() {
    if let Some(argv0) = std::env::args_os().next()
        && berth::runc::invoked_as_runc(&argv0)
    {
        std::process::exit(berth::runc::main());
    }
    berth::sys::trace("cli-start");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(0);
            }
            ErrorKind::UnknownArgument => {
                eprintln!("unknown flag: {}\nSee 'berth --help'.", flag_of(&e));
                std::process::exit(125);
            }
            ErrorKind::ValueValidation => {
                // Docker's wording: invalid argument "x" for "--pids-limit" flag: <why>.
                let value = context(&e, ContextKind::InvalidValue);
                let why = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "invalid value".into());
                eprintln!(
                    "invalid argument \"{value}\" for \"{}\" flag: {why}\nSee 'berth --help'.",
                    flag_of(&e)
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

fn context(e: &clap::Error, kind: ContextKind) -> String {
    e.get(kind).map(|v| v.to_string()).unwrap_or_default()
}

/// The flag a parse error is about, without clap's value placeholder (`--memory <MEMORY>`)
/// or the value given with `=`.
fn flag_of(e: &clap::Error) -> String {
    let arg = context(e, ContextKind::InvalidArg);
    arg.split(['=', ' ']).next().unwrap_or_default().to_string()
}
