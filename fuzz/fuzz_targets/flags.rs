//! `run`/`create` flag values: `-p`, `--expose`, `-v`, `--ulimit`, `-m`, `--memory-swap`,
//! `--cpus`, `--tmpfs`, `--add-host`, `--dns`, `--log-opt`, `--user` (its syntax; the
//! lookup is the `passwd` target), `--detach-keys`, signals, `--cpu-shares`, `--cpuset-cpus`,
//! `--cpuset-mems`, `--blkio-weight`, `--device`, `--cgroupns`. Each input line is one flag:
//! its first character picks the flag, the rest is the value.
#![no_main]

use std::path::Path;

use berth::container::flags::{self, Flags};
use berth::container::log_opts::LogConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut f = Flags {
        // `seccomp=FILE` (security_opt) reads a file: not a parser of outside input, so
        // never set here.
        network: "bridge".into(),
        args: vec!["busybox".into()],
        ..Flags::default()
    };
    for line in s.lines() {
        let mut chars = line.chars();
        let Some(which) = chars.next() else { continue };
        let v = chars.as_str().to_string();
        match which {
            'p' => f.publish.push(v),
            'e' => f.expose.push(v),
            'v' => {
                let _ = berth::fuzzing::parse_volume(Path::new("/nonexistent-store"), &v);
            }
            'u' => f.ulimit.push(v),
            'm' => f.memory = Some(v),
            's' => f.memory_swap = Some(v),
            'c' => f.cpus = Some(v),
            't' => f.tmpfs.push(v),
            'h' => f.add_host.push(v),
            'd' => f.dns.push(v),
            'l' => f.log_opt.push(v),
            'L' => f.log_driver = Some(v),
            'n' => f.network = v,
            'U' => f.user = Some(v),
            'k' => {
                let _ = berth::container::attach::parse_detach_keys(&v);
            }
            'S' => {
                let _ = berth::container::ops::parse_signal(&v);
            }
            'P' => f.pids_limit = v.parse().ok(),
            'C' => f.cpu_shares = Some(v),
            'X' => f.cpuset_cpus = Some(v),
            'M' => f.cpuset_mems = Some(v),
            'b' => f.blkio_weight = Some(v),
            'D' => f.device.push(v),
            'g' => f.cgroupns = Some(v),
            _ => f.label.push(v),
        }
    }
    let _ = flags::create_options(f, None, &LogConfig::default(), |_| {});
});
