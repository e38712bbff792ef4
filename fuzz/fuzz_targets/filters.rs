//! `--filter` values of `ps`, `container prune`, `images`, `image prune` and `search`, with
//! their time values (`until=`, `since=`) and reference globs.
#![no_main]

use berth::container::filter::{Filter, PruneFilters};
use berth::image::{list, search};
use berth::time::{Timestamp, parse_until};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<String> = s.lines().map(str::to_string).collect();
    for v in &values {
        let _ = v.parse::<Filter>();
        let now = Timestamp {
            secs: 1_700_000_000,
            nanos: 0,
        };
        let _ = parse_until(v, now);
        let _ = berth::container::logs::parse_time_bound(v);
        let _ = Timestamp::parse_rfc3339(v);
    }
    let _ = PruneFilters::parse(&values);
    let _ = search::Filters::parse(&values);
    if let Ok(f) = list::Filters::parse(&values) {
        let _ = f.dangling();
        for pattern in f.get("reference") {
            let _ = list::glob_match(pattern, "docker.io/library/busybox:latest");
            let _ = list::glob_match(pattern, "registry:5000/a/b/c:tag");
        }
    }
    // A glob against a name, both from the input, split at the first NUL.
    if let Some((p, n)) = s.split_once('\0') {
        let _ = list::glob_match(p, n);
    }
});
