//! `top`: the host's `ps` output, cut down to the processes of one container.

use std::path::PathBuf;

use super::ContainerError;
use super::ops;
use super::store::ContainerDir;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("running ps: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// `ps` wrote no header line (its options asked for none, or it failed).
    #[error("ps printed nothing")]
    Empty,
    /// The options given to `ps` leave out the PID column, so no line can be told apart.
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
}

/// `ps ps_args` (Docker's default `-ef`), its header and the lines of the container's
/// processes, each split into the header's columns (the last one keeps its spaces: it is
/// the command).
pub fn top(dir: &ContainerDir, ps_args: &[String]) -> Result<Vec<Vec<String>>, TopError> {
    let pids = ops::pids(dir)?;
    let default = ["-ef".to_string()];
    let ps_args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let program = PathBuf::from("ps");
    let output = std::process::Command::new(&program)
        .args(ps_args)
        .output()
        .map_err(|source| TopError::Spawn { program, source })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().ok_or(TopError::Empty)?;
    let pid_column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut rows = vec![
        header
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>(),
    ];
    let columns = rows[0].len();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            let last = columns.min(fields.len()) - 1;
            let mut row: Vec<String> = fields[..last].iter().map(|s| s.to_string()).collect();
            row.push(fields[last..].join(" "));
            rows.push(row);
        }
    }
    Ok(rows)
}
