//! `load`: a docker-archive or OCI-layout tar (optionally compressed) into a scratch store.
//! Nothing may be written outside the store (see the `unpack` target's checks).
#![no_main]

#[path = "scratch.rs"]
mod scratch;

use berth::image::docker_archive;
use berth::image::store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = scratch::Scratch::get();
    let root = s.fresh("store");
    std::fs::remove_dir(&root).expect("an empty directory");
    let store = Store::open(&root).expect("a scratch store");
    let _ = docker_archive::load(&store, data, &|_| {});
    s.check(&["store"]);
});
