//! A container's json-file log as `logs` reads it (src/container/log_file.rs): the first
//! byte picks `--tail`, `-t` and how the rest is laid out — before the first NUL the rotated
//! `<log>.1` (plain or gzipped), after it the current file. The lines `--tail N` prints
//! must be the last N of those the whole log prints.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use berth::container::log_file::{self, Skip};
use berth::container::logs::LogOptions;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-fuzz-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

fn read(base: &std::path::Path, tail: Option<u64>, options: &LogOptions) -> Option<Vec<Vec<u8>>> {
    let mut set = log_file::open_new(base, 3).ok()??;
    let start = match tail {
        Some(n) => log_file::tail_start(&mut set, n).ok()?,
        None => (0, Skip::Bytes(0)),
    };
    let mut lines = Vec::new();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    log_file::read_forward(set, start, &mut |line| {
        lines.push(line.to_vec());
        berth::fuzzing::emit_log_line(line, options, &mut out, &mut err);
    })
    .ok()?;
    Some(lines)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (rotated, current) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let dir = scratch();
    let base = dir.join("c-json.log");
    for n in 1..=3 {
        let _ = std::fs::remove_file(log_file::rotated_path(&base, n));
        let _ = std::fs::remove_file(log_file::compressed_path(&base, n));
    }
    std::fs::write(&base, current).expect("write the current log");
    if let Some(rotated) = rotated {
        if mode & 0x80 != 0 {
            let file = std::fs::File::create(log_file::compressed_path(&base, 1)).unwrap();
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            gz.write_all(rotated).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(log_file::rotated_path(&base, 1), rotated).unwrap();
        }
    }
    let options = LogOptions {
        timestamps: mode & 0x40 != 0,
        since: (mode & 0x20 != 0).then_some(1_600_000_000),
        ..LogOptions::default()
    };
    let n = u64::from(mode & 0x1f);
    let (Some(all), Some(tail)) = (read(&base, None, &options), read(&base, Some(n), &options))
    else {
        return;
    };
    assert!(
        tail.len() as u64 <= n,
        "--tail {n} gave {} lines",
        tail.len()
    );
    assert!(
        all.ends_with(&tail),
        "--tail {n}: {tail:?} is not the end of {all:?}"
    );
    assert_eq!(tail.len(), all.len().min(n as usize), "--tail {n}");
});
