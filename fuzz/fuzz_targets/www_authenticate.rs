//! A registry's `WWW-Authenticate` challenge and the registry timeout settings.
#![no_main]

use berth::image::registry::auth::Challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Challenge::parse(s);
    let _ = berth::fuzzing::parse_registry_duration(s);
});
