//! `ps ID [PS ARGS]`: the container's processes with `ps`'s columns (default `-ef`), read
//! from /proc as berth's `top` reads them, or with `--format json` the array of their pids.

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
    // As berth's `top`: read from /proc, no `ps` needed on the host.
    let rows = crate::container::top::rows(&pids, &args.ps_args)
        .map_err(|e| RuncError::Usage(e.to_string()))?;
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(0)
}
