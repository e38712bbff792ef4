//! `list`: every container under `--root`, as runc's table (Go's tabwriter: minimum width 12,
//! padding 3), ids only with `-q`, or a JSON array.

use super::state::RuncState;
use super::{Context, RuncError};

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Output format: table or json
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Display only container ids
    #[arg(short, long)]
    quiet: bool,
}

pub fn list(context: &Context, args: ListArgs) -> Result<i32, RuncError> {
    let states: Vec<RuncState> = context
        .runtime
        .list()?
        .iter()
        .map(|c| RuncState::of(c, context.runtime.root()))
        .collect();
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "json" => {
            let json =
                serde_json::to_string(&states).map_err(|e| RuncError::Usage(e.to_string()))?;
            println!("{json}");
        }
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for s in &states {
                rows.push([
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    s.bundle.clone(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print!("{}", tabwrite(&rows));
        }
        other => {
            return Err(RuncError::Usage(format!("invalid format option {other:?}")));
        }
    }
    Ok(0)
}

/// Go's `tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)` over tab-separated cells: each column
/// as wide as its widest cell plus 3, at least 12; the last cell of a row unpadded.
fn tabwrite<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}
