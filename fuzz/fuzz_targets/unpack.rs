//! A layer (tar, gzip or zstd) through the unpacker into a scratch root. Nothing may be
//! written outside the root: not beside it (only `root` and an untouched canary file are
//! there afterwards, the canary with no new hard link), and not at the absolute directory
//! the seeds' symlinks point at.
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use berth::archive::{compression, unpack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = scratch::Scratch::get();
    let root = s.fresh("root");
    if let Ok(decoded) = compression::decompress(data) {
        // The harness's own bound on what a bomb expands to, below the unpacker's.
        let limited = compression::LimitedReader::new(decoded, 64 << 20);
        let _ = unpack::unpack_layer(limited, &root);
    }
    s.check(&["root"]);
});
