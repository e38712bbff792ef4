//! `--user`/`USER` resolved against an image's `/etc/passwd` and `/etc/group`: the input is
//! the user spec, the passwd file and the group file, separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.splitn(3, '\0');
    let spec = parts.next().unwrap_or("");
    let passwd = parts.next();
    let group = parts.next();
    if let Ok(u) = berth::fuzzing::resolve_user(passwd, group, spec) {
        // A uid or gid of 2^31 or more is -1 or negative to the kernel and to Docker: root,
        // or "no change", must never come out of an image's files or a flag.
        let max = i32::MAX as u32;
        assert!(u.uid <= max && u.gid <= max, "{spec:?} resolved to {u:?}");
        assert!(u.additional_gids.iter().all(|g| *g <= max), "{u:?}");
        assert_eq!(u.additional_gids.first(), Some(&u.gid));
    }
});
