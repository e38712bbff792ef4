//! `--format` Go templates (`ps`, `images`, `inspect`, …), rendered against an
//! inspect-like document and a table row.
#![no_main]

use berth::cli::template::{Format, from_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(format) = Format::parse(s) else {
        return;
    };
    let doc = serde_json::json!({
        "Id": "sha256:0123456789abcdef",
        "Names": ["/web"],
        "Config": {
            "Env": ["PATH=/bin", "A=b"],
            "Labels": {"k": "v", "x": ""},
            "Cmd": null,
            "ExposedPorts": {"80/tcp": {}},
        },
        "State": {"Running": true, "Pid": 42, "ExitCode": 0},
        "Size": 1234,
        "RepoTags": [],
    });
    let _ = format.render_json(&doc);
    let row = from_json(&serde_json::json!({"ID": "abc", "Repository": "busybox", "Size": "1MB"}));
    let _ = format.render(&[row.clone(), row], &[("ID", "IMAGE ID"), ("Size", "SIZE")]);
});
