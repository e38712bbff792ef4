//! `ps ID [PS ARGS]`: the host's `ps` (default `-ef`) cut to the container's processes, or
//! with `--format json` the array of their pids.

use std::process::Command;

use super::{Context, RuncError};

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Output format: table or json
    #[arg(short, long, default_value = "table")]
    format: String,
    id: String,
    /// Arguments for ps (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn ps(context: &Context, args: PsArgs) -> Result<i32, RuncError> {
    let pids: Vec<i32> = context
        .load(&args.id)?
        .processes()?
        .iter()
        .map(|p| p.as_raw())
        .collect();
    match args.format.as_str() {
        "json" => {
            println!(
                "{}",
                serde_json::to_string(&pids).map_err(|e| RuncError::Usage(e.to_string()))?
            );
            return Ok(0);
        }
        "table" => {}
        other => return Err(RuncError::Usage(format!("invalid format option {other:?}"))),
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| RuncError::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(RuncError::Usage(format!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|h| h == "PID") else {
        return Err(RuncError::Usage(
            "couldn't find PID field in ps output".into(),
        ));
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
