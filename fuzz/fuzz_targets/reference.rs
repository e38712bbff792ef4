//! Image references (`pull NAME`, `tag`, archive annotations), digests and `--platform`.
#![no_main]

use berth::image::digest::Digest;
use berth::image::manifest::Platform;
use berth::image::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for parse in [Reference::parse, Reference::parse_named] {
        if let Ok(r) = parse(s) {
            // What berth prints and stores must read back as the same reference.
            let shown = r.to_string();
            let again = parse(&shown)
                .unwrap_or_else(|e| panic!("{s:?} printed as {shown:?}, which fails: {e}"));
            assert_eq!(again, r, "{s:?} printed as {shown:?}");
        }
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(Digest::parse(d.as_str()).ok(), Some(d.clone()));
        let _ = d.short();
    }
    if let Ok(p) = Platform::parse(s) {
        let _ = p.to_string();
        let _ = p.accepts(&Platform::host());
    }
    let _ = Platform::parse_flag(Some(s));
});
