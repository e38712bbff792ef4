//! Manifests and indexes as a registry or an archive serves them (first line: the
//! Content-Type header, the rest: the body), and image configs.
#![no_main]

use berth::image::config::ImageConfig;
use berth::image::manifest::{self, ConfigSummary, Document, Platform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    for ct in [content_type, None] {
        if let Ok(Document::Index(entries)) = manifest::parse(body, ct) {
            let _ = manifest::select_platform(&entries, &Platform::host());
            let _ = manifest::select_platform(
                &entries,
                &Platform::parse("linux/arm/v7").expect("a valid platform"),
            );
        }
    }
    if let Ok(config) = serde_json::from_slice::<ImageConfig>(body) {
        let _ = config.platform().to_string();
        let _ = serde_json::to_vec(&config).expect("a parsed config serialises");
    }
    let _ = serde_json::from_slice::<ConfigSummary>(body);
});
