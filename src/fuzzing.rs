//! Entry points for the `cargo fuzz` targets in `fuzz/` (not part of berth's interface): each
//! passes untrusted bytes to one of berth's private parsers, the narrowest way in, so that the
//! parsers stay private to their modules. See `scripts/fuzz`.

use std::path::Path;

use crate::container::{create, logs, user};
use crate::image::registry;

/// `-v`'s value, against a store at `store_root` (the path is only joined, never touched).
pub fn parse_volume(store_root: &Path, spec: &str) -> Result<(), String> {
    create::parse_volume(store_root, spec)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `--user` resolved against an image's `/etc/passwd` and `/etc/group` contents: the uid,
/// gid and additional gids.
pub fn resolve_user(
    passwd: Option<&str>,
    group: Option<&str>,
    spec_user: &str,
) -> Result<user::ResolvedUser, user::UserError> {
    user::resolve_from(passwd, group, spec_user)
}

/// One line of a json-file log as `logs` prints it.
pub fn emit_log_line(
    line: &[u8],
    options: &logs::LogOptions,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) {
    logs::emit(line, options, out, err)
}

/// A `BERTH_REGISTRY_*_TIMEOUT` value.
pub fn parse_registry_duration(text: &str) -> Option<std::time::Duration> {
    registry::parse_duration(text)
}
