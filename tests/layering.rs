//! The layering rule (docs/ARCHITECTURE.md): berth's folders import in one direction,
//!
//! ```text
//! cli → (build, container) → (image, network, runtime) → archive → (config, time, alloc) → sys
//! ```
//!
//! A module may use the floors below its own, never its own floor's other modules (sideways)
//! nor a floor above. `config`, `time` and `alloc` are leaf utilities: any module of berth
//! may use them, and they use nothing of berth but `sys`. The runtime and sys are crates of
//! their own, so Cargo keeps them from importing berth as long as their manifests do not
//! depend on it; this test checks those manifests and every import in `src/`.
//!
//! Reads source only: needs neither root nor the network.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Each top-level module of berth and its floor: higher floors may use lower ones.
const FLOORS: &[(&str, u8)] = &[
    ("cli", 5),
    ("runc", 5),
    // The fuzz targets' entry points into the parsers (fuzz/), an outside caller like the CLI.
    ("fuzzing", 5),
    ("build", 4),
    ("container", 4),
    ("image", 3),
    ("network", 3),
    ("runtime", 3),
    ("archive", 2),
    ("config", 1),
    ("time", 1),
    ("alloc", 1),
    ("sys", 0),
];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// Modules `module` may use, for the failure message.
fn allowed(module: &str) -> String {
    let own = floor(module).unwrap_or(0);
    let below: Vec<&str> = FLOORS
        .iter()
        .filter(|(_, f)| *f < own)
        .map(|(m, _)| *m)
        .collect();
    if below.is_empty() {
        "nothing of berth".to_string()
    } else {
        below.join(", ")
    }
}

/// One reference from a file to another top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    target: String,
}

#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    target: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match floor(&self.target) {
            None => write!(
                f,
                "{}:{}: {} uses `{}`, which has no floor: give it one in tests/layering.rs",
                self.file, self.line, self.from, self.target
            ),
            Some(_) => write!(
                f,
                "{}:{}: {} imports {} against the layering rule ({} may use only: {})",
                self.file,
                self.line,
                self.from,
                self.target,
                self.from,
                allowed(&self.from)
            ),
        }
    }
}

/// The source with comments, string and character literals blanked out (newlines kept, so
/// line numbers stay right): a path in a doc comment or a message is not an import.
fn strip(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    // Blanks b[from..to], keeping its newlines.
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        out.extend(
            b[from..to]
                .iter()
                .map(|&c| if c == b'\n' { b'\n' } else { b' ' }),
        );
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && ident(b[i - 1]);
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some((body, hashes)) = raw_string(b, i).filter(|_| !prev_ident) {
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| body + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == b'"' {
            // Also the body of b"…" and c"…": the prefix letter is kept, harmlessly.
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == b'\'' {
            // A character literal ('x', '\n', '\u{1F600}', '"'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else {
                let len = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

/// At a raw string (`r"…"`, `r#"…"#`, `br##"…"##`): where its body starts, and how many
/// `#` close it.
fn raw_string(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let start = match (b[i], b.get(i + 1)) {
        (b'r', _) => i + 1,
        (b'b', Some(b'r')) => i + 2,
        _ => return None,
    };
    let hashes = b[start..].iter().take_while(|&&c| c == b'#').count();
    (b.get(start + hashes) == Some(&b'"')).then_some((start + hashes + 1, hashes))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(stripped: &str) -> Vec<(Token, usize)> {
    let b = stripped.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let len = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            out.push((Token::Ident(stripped[i..i + len].to_string()), line));
            i += len;
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            let token = match c {
                b'{' => Token::Open,
                b'}' => Token::Close,
                b',' => Token::Comma,
                _ => Token::Other,
            };
            out.push((token, line));
            i += 1;
        }
    }
    out
}

/// Every reference to a top-level module in a file whose module path is `module`
/// (`["image", "registry", "login"]`; a `mod.rs` is its folder's module): `crate::X…`,
/// `super::…` paths that climb to the crate root, `berth_runtime`/`berth_sys`, in `use`
/// trees (`crate::{a, b::c}`) as in expressions. Inline `mod x { … }` blocks are followed, so
/// a test module's `super::` is read from where it sits.
fn references(source: &str, module: &[&str]) -> Vec<Reference> {
    let toks = tokens(&strip(source));
    let ident = |i: usize| match toks.get(i) {
        Some((Token::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: Token| toks.get(i).map(|(k, _)| k) == Some(&t);
    let mut out = Vec::new();
    // The module path where the scan is, and the brace depth each inline module opened at.
    let mut path: Vec<String> = module.iter().map(|s| s.to_string()).collect();
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].1;
        match &toks[i].0 {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if inline.last() == Some(&depth) {
                    inline.pop();
                    path.pop();
                }
            }
            Token::Ident(word) if word == "mod" => {
                if let Some(name) = ident(i + 1)
                    && is(i + 2, Token::Open)
                {
                    path.push(name.to_string());
                    inline.push(depth);
                }
            }
            // A path starts here unless it continues one (`a::crate` is not a thing, but
            // `x::super` is not a new path either).
            Token::Ident(word) if i == 0 || !is(i - 1, Token::PathSep) => {
                let mut root_next = None; // index of the token naming the top-level module
                match word.as_str() {
                    "berth_runtime" => out.push(Reference {
                        line,
                        target: "runtime".into(),
                    }),
                    "berth_sys" => out.push(Reference {
                        line,
                        target: "sys".into(),
                    }),
                    "crate" if is(i + 1, Token::PathSep) => root_next = Some(i + 2),
                    "super" => {
                        let mut up = 1;
                        let mut j = i + 1;
                        while is(j, Token::PathSep) && ident(j + 1) == Some("super") {
                            up += 1;
                            j += 2;
                        }
                        if up >= path.len() && is(j, Token::PathSep) {
                            // Climbed to (or past) the crate root.
                            root_next = Some(j + 1);
                        }
                        i = j - 1;
                    }
                    _ => {}
                }
                if let Some(next) = root_next {
                    for target in first_segments(&toks, next) {
                        out.push(Reference { line, target });
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first segment of the path at `at`, or of each entry of the `{…}` group there.
fn first_segments(toks: &[(Token, usize)], at: usize) -> Vec<String> {
    match toks.get(at) {
        Some((Token::Ident(s), _)) if s != "self" => vec![s.clone()],
        Some((Token::Open, _)) => {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut entry_start = true;
            for (t, _) in &toks[at + 1..] {
                match t {
                    Token::Open => depth += 1,
                    Token::Close if depth == 0 => break,
                    Token::Close => depth -= 1,
                    Token::Comma if depth == 0 => {
                        entry_start = true;
                        continue;
                    }
                    Token::Ident(s) if entry_start && depth == 0 && s != "self" => {
                        out.push(s.clone())
                    }
                    _ => {}
                }
                entry_start = false;
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The references of one file that break the rule. `module` is the file's module path.
fn violations(file: &str, source: &str, module: &[&str]) -> Vec<Violation> {
    let from = module[0];
    references(source, module)
        .into_iter()
        .filter(|r| r.target != from)
        .filter(|r| match (floor(from), floor(&r.target)) {
            (Some(own), Some(theirs)) => theirs >= own,
            _ => true,
        })
        .map(|r| Violation {
            file: file.to_string(),
            line: r.line,
            from: from.to_string(),
            target: r.target,
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_follow_the_layering_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut failures = Vec::new();
    let mut scanned = 0;
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        let mut module: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        // lib.rs and main.rs are the crate root, above every floor.
        if module == ["lib"] || module == ["main"] {
            continue;
        }
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        let shown = format!("src/{}", relative.display());
        if floor(module[0]).is_none() {
            failures.push(format!(
                "{shown}: module {} has no floor: give it one in tests/layering.rs",
                module[0]
            ));
            continue;
        }
        let source = std::fs::read_to_string(path).unwrap();
        failures.extend(
            violations(&shown, &source, &module)
                .iter()
                .map(ToString::to_string),
        );
        scanned += 1;
    }
    assert!(scanned > 50, "only {scanned} files found under src/");
    assert!(
        failures.is_empty(),
        "imports against the layering rule (cli → (build, container) → (image, network, \
         runtime) → archive → (config, time, alloc) → sys):\n{}",
        failures.join("\n")
    );
}

/// The names a manifest depends on, in any dependency table, with renames resolved.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']');
            // [dependencies], [dev-dependencies], [target.'cfg(…)'.build-dependencies] or
            // [dependencies.name].
            let (table, name) = match header.rsplit_once("dependencies.") {
                Some((_, name)) => (true, Some(name)),
                None => (header.ends_with("dependencies"), None),
            };
            in_table = table && name.is_none();
            out.extend(name.map(str::to_string));
            continue;
        }
        if let Some(package) = line.strip_prefix("package") {
            out.extend(package.split('"').nth(1).map(str::to_string));
        }
        if in_table && let Some((name, value)) = line.split_once('=') {
            out.push(name.trim().trim_matches('"').to_string());
            // { package = "berth", … }: the crate it really is.
            if let Some((_, rest)) = value.split_once("package") {
                out.extend(rest.split('"').nth(1).map(str::to_string));
            }
        }
    }
    out
}

#[test]
fn lower_crates_do_not_depend_on_higher_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let forbidden: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("crates/berth-runtime", &["berth"][..]),
        ("crates/berth-sys", &["berth", "berth-runtime"][..]),
    ]);
    for (krate, above) in forbidden {
        let path = root.join(krate).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&path).unwrap();
        let deps = dependencies(&manifest);
        for name in above {
            assert!(
                !deps.iter().any(|d| d == name),
                "{}: depends on {name}, a crate above it",
                path.display()
            );
        }
    }
}

#[test]
fn manifest_reader_sees_every_form_of_dependency() {
    let manifest = r#"
[package]
name = "x"
[dependencies]
libc = "0.2"
berth-sys = { path = "../berth-sys" }
[target.'cfg(unix)'.dev-dependencies]
alias = { package = "berth", path = "../.." }
[dependencies.berth-runtime]
path = "../berth-runtime"
"#;
    let deps = dependencies(manifest);
    for name in ["libc", "berth-sys", "berth", "berth-runtime"] {
        assert!(deps.iter().any(|d| d == name), "{name} missing in {deps:?}");
    }
    assert!(!deps.iter().any(|d| d == "x" || d == "path"), "{deps:?}");
}

#[test]
fn scanner_flags_upward_imports_and_ignores_comments_and_strings() {
    let source = r####"
//! Mentions crate::cli in a doc comment.
use super::store::Store;
use crate::archive::unpack;
use crate::{sys, container::ops};
/* crate::cli in a /* nested */ block comment */
fn f() {
    let _ = "crate::cli in a string";
    let _ = r#"crate::cli in a raw "string""#;
    let _ = '"'; let _ = crate::network::connect();
    fn g<'a>(x: &'a str) -> &'a str { x }
    berth_runtime::spawn();
}
mod tests {
    use super::super::manifest;
    use super::super::super::cli::run;
}
"####;
    let found: Vec<(usize, String)> = violations("src/image/x.rs", source, &["image", "x"])
        .into_iter()
        .map(|v| (v.line, v.target))
        .collect();
    assert_eq!(
        found,
        [
            (5, "container".to_string()),
            (10, "network".to_string()),
            (12, "runtime".to_string()),
            (16, "cli".to_string()),
        ]
    );
    let message = violations("src/image/x.rs", "use crate::cli;", &["image", "x"])[0].to_string();
    assert_eq!(
        message,
        "src/image/x.rs:1: image imports cli against the layering rule (image may use only: \
         archive, config, time, alloc, sys)"
    );
}
