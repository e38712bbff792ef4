//! `--format` templates with Docker's semantics: Go `text/template` (through `gtmpl`), the
//! `table` directive (a header row and columns aligned like Go's `tabwriter` with Docker's
//! settings), literal `\t` and `\n` escapes, and Docker's template functions (`json`, `join`,
//! `split`, `lower`, `upper`, `title`, `pad`, `truncate`).

use std::collections::{BTreeMap, HashMap};

use gtmpl::{Context, FuncError, Template, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template parsing error: {0}")]
    Execute(String),
}

/// A parsed `--format` value.
pub struct Format {
    template: Template,
    table: bool,
    /// The template as text and `{{.Field}}` actions only, when it is that simple: rendered
    /// directly (the same output Go gives), without building a template value per row.
    simple: Option<Vec<Piece>>,
}

enum Piece {
    Text(String),
    Field(String),
}

/// A row of a listing: named fields, computed when a template asks for them.
pub trait Fields {
    /// Every field name, in the order `{{json .}}` does not care about.
    fn names(&self) -> &'static [&'static str];
    fn field(&self, name: &str) -> Option<String>;

    fn to_value(&self) -> Value {
        Value::Object(
            self.names()
                .iter()
                .filter_map(|n| self.field(n).map(|v| (n.to_string(), Value::from(v))))
                .collect(),
        )
    }
}

/// Splits `text {{.A}} more {{ .B }}` into pieces; None when any action is more than a field.
fn simple_pieces(body: &str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let action = &after[..end];
        if action.starts_with('-') || action.ends_with('-') {
            return None;
        }
        let name = action.trim().strip_prefix('.')?;
        for part in name.split('.') {
            let mut chars = part.chars();
            let first = chars.next()?;
            if !(first.is_ascii_alphabetic() || first == '_')
                || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return None;
            }
        }
        pieces.push(Piece::Field(name.to_string()));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Some(pieces)
}

/// How deep gtmpl may nest parentheses (Go allows 10000; gtmpl's recursion overflowed an
/// 8 MB stack at 4000 in a release build; frames are bigger in a debug one).
const MAX_DEPTH: usize = 200;

/// The line (from 1) and Go's message for the first thing in `body`'s actions that gtmpl cannot
/// take: a string constant it would never finish reading, its unquoting takes a `\u` with fewer than four characters after it in the
/// string (or `\x` with fewer than two) as an escape of no length and reads it again, for ever
/// (`{{printf "\u}f "}}`, found by the `template` fuzz target). Go refuses these strings
/// ("invalid syntax"), except in raw strings, which Go does not unquote but gtmpl does: those
/// are refused too (Docker would print `` `\x` `` as it is), as the only way not to hang.
/// The actions are split as gtmpl's lexer splits them (its quirks included: a `\` keeps a
/// quoted string's next `"` from ending it even after `\\`); where that lexer stops at an
/// error, the scan may go on and find a string it never would, which only turns one error
/// into another.
///
/// Parentheses or `if`/`range`/`with` blocks nested deeper than [`MAX_DEPTH`] are refused too
/// (with Go's words for its own, deeper, limit): gtmpl's parser recurses for each, and 4000
/// parentheses or 3000 `if`s overflowed the stack (found by the `template` fuzz target). So
/// are `define`, `template` and `block`, which a `--format` has no use for: a template that
/// calls itself (`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`) overflowed the
/// stack while rendering, where Go stops at a depth of 100,000 calls.
fn refused(body: &str) -> Option<(usize, &'static str)> {
    let b = body.as_bytes();
    let line = |i: usize| 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
    let at = |i: usize, s: &str| b[i..].starts_with(s.as_bytes());
    let mut i = 0;
    let mut blocks = 0usize;
    loop {
        // Text, up to an action.
        i += body[i..].find("{{")? + 2;
        let after_trim = if at(i, "- ") { i + 2 } else { i };
        if at(after_trim, "/*") {
            i = after_trim + 2 + body[after_trim + 2..].find("*/")? + 2;
            i += if at(i, " -}}") {
                4
            } else if at(i, "}}") {
                2
            } else {
                return None;
            };
            continue;
        }
        i = after_trim;
        let word_at = i + b[i..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
        let word_len = b[word_at..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        match &body[word_at..word_at + word_len] {
            "if" | "range" | "with" => {
                blocks += 1;
                if blocks > MAX_DEPTH {
                    return Some((line(i), "max expression depth exceeded"));
                }
            }
            "end" => blocks = blocks.saturating_sub(1),
            "define" | "template" | "block" => {
                return Some((
                    line(i),
                    "define, template and block are not supported in --format",
                ));
            }
            _ => {}
        }
        // Inside the action, up to its `}}`.
        let mut depth = 0usize;
        loop {
            if at(i, "}}") || at(i, " -}}") {
                if depth > 0 {
                    return None;
                }
                i += if at(i, "}}") { 2 } else { 4 };
                break;
            }
            match b.get(i)? {
                b'\r' | b'\n' => return None,
                b'(' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some((line(i), "max expression depth exceeded"));
                    }
                }
                b')' => depth = depth.checked_sub(1)?,
                quote @ (b'"' | b'`' | b'\'') => {
                    let start = i;
                    let mut escaped = false;
                    loop {
                        i += 1;
                        match (*quote, *b.get(i)?) {
                            (b'`', b'`') => break,
                            (b'`', _) => {}
                            (_, b'\n') => return None,
                            (_, b'\\') => {
                                escaped = true;
                                continue;
                            }
                            (q, c) if c == q && !escaped => break,
                            _ => {}
                        }
                        escaped = false;
                    }
                    // gtmpl unquotes char constants another way, which always ends.
                    if *quote != b'\'' && unquote_never_ends(&body[start + 1..i]) {
                        return Some((line(start), "invalid syntax"));
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Whether gtmpl's `unquote_str` loops on a string constant's inside `raw`: its steps, with
/// `false` where they stop (an error or a panic, which `parse_gtmpl` reports).
fn unquote_never_ends(raw: &str) -> bool {
    // `\x` and `\u` take as many 4- and 6-byte groups as fit, each `\x`/`\u` and hex digits
    // (as `from_str_radix` reads them, a sign included) after the first.
    fn groups(s: &str, group: usize, hex: fn(&str) -> bool) -> Option<usize> {
        let mut n = 0;
        while s.len() - n >= group {
            if !s.get(n + 2..n + group).is_some_and(hex) {
                return None;
            }
            n += group;
        }
        Some(n)
    }
    let mut i = 0;
    while i < raw.len() {
        let s = &raw[i..];
        let step = if s.starts_with('\\') {
            let step = match s.get(..2) {
                Some(r"\x") => groups(s, 4, |h| u8::from_str_radix(h, 16).is_ok()),
                Some(r"\u") => groups(s, 6, |h| u16::from_str_radix(h, 16).is_ok()),
                Some(r"\U") if s.len() == 10 => Some(10),
                Some(r"\b" | r"\f" | r"\n" | r"\r" | r"\t" | r"\'" | r#"\""# | r"\\") => Some(2),
                _ => None,
            };
            match step {
                Some(0) => return true,
                Some(n) => n,
                None => return false,
            }
        } else {
            s.chars().next().map_or(1, char::len_utf8)
        };
        i += step;
    }
    false
}

/// `f`'s result, or `None` if it panicked, without the panic's message (gtmpl panics on
/// some input, in its lexer's thread and in the caller's).
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(quiet);
    result.ok()
}

/// A gtmpl template of `text`, with Docker's functions.
fn parse_gtmpl(text: String) -> Result<Template, TemplateError> {
    let mut template = Template::default();
    template.add_funcs(&[
        ("json", json as gtmpl::Func),
        ("join", join as gtmpl::Func),
        ("split", split as gtmpl::Func),
        ("lower", lower as gtmpl::Func),
        ("upper", upper as gtmpl::Func),
        ("title", title as gtmpl::Func),
        ("pad", pad as gtmpl::Func),
        ("truncate", truncate as gtmpl::Func),
    ]);
    // gtmpl's lexer panics on some non-ASCII text inside an action (it steps back one byte,
    // not one character: `{{defd \u{791}n`, found by the `template` fuzz target): that is a
    // template it cannot parse, reported as such, without the panic's message.
    let one_line = !text.contains('\n');
    match quietly(|| template.parse(text).map_err(|e| e.to_string())) {
        Some(result) => {
            result.map_err(|e| TemplateError::Parse(clean_error(&go_parse_error(&e, one_line))))?
        }
        None => {
            return Err(TemplateError::Parse(
                "the template's non-ASCII text could not be read".into(),
            ));
        }
    }
    Ok(template)
}

/// gtmpl's `template: :LINE:message` as Go words it, `template: :LINE: message`. gtmpl counts
/// a line for every piece of text and every delimiter, so its line is right only by chance:
/// a template of one line (nearly every `--format`) is given Go's 1.
fn go_parse_error(message: &str, one_line: bool) -> String {
    let Some((line, rest)) = message
        .strip_prefix("template: :")
        .and_then(|m| m.split_once(':'))
        .filter(|(line, _)| line.parse::<usize>().is_ok())
    else {
        return message.to_string();
    };
    let line = if one_line { "1" } else { line };
    // Where the parser meets the lexer's error, gtmpl says `unexpected unclosed action in
    // command`; Go says the lexer's words alone.
    let rest = rest.trim_start();
    let rest = match rest
        .strip_prefix("unexpected ")
        .and_then(|r| r.rsplit_once(" in "))
    {
        Some((lexer, _))
            if lexer.starts_with("unclosed ") || lexer.starts_with("unterminated ") =>
        {
            lexer
        }
        _ => rest,
    };
    format!("template: :{line}: {rest}")
}

impl Format {
    pub fn parse(format: &str) -> Result<Format, TemplateError> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let simple = simple_pieces(&body);
        // gtmpl's lexer steps back one byte after reading past the end of the text, so a
        // template that ends inside an action reads its last character again, for ever: `{{1`
        // or `{{ .ID\t` hung berth (found by the `template` fuzz target). A `\r` after the
        // text ends every action with gtmpl's "unclosed action" (Go's message for these), so
        // the template is parsed that way first and, only if that succeeds (the text ends
        // outside any action, where gtmpl stops at the end), as it is.
        if let Some((line, message)) = refused(&body) {
            return Err(TemplateError::Parse(format!(
                "template: :{line}: {message}"
            )));
        }
        parse_gtmpl(format!("{body}\r"))?;
        let template = parse_gtmpl(body)?;
        Ok(Format {
            template,
            table,
            simple,
        })
    }

    /// Renders one row of fields (no newline added).
    pub fn render_fields(&self, row: &dyn Fields) -> Result<String, TemplateError> {
        match &self.simple {
            Some(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Field(name) => match row.field(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                return Err(TemplateError::Execute(clean_error(&format!(
                                    "no field {name} for row"
                                ))));
                            }
                        },
                    }
                }
                Ok(out)
            }
            None => self.render_one(&row.to_value()),
        }
    }

    /// Renders a JSON document (an `inspect` result). Field chains (`{{.Config.Env}}`) print
    /// lists and maps the way Go's text/template does (`[a b]`, `map[k:v]`); anything more
    /// goes through the template engine.
    pub fn render_json(&self, doc: &serde_json::Value) -> Result<String, TemplateError> {
        let Some(pieces) = &self.simple else {
            return self.render_one(&from_json(doc));
        };
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(chain) => {
                    let mut v = doc;
                    let mut last = "";
                    for part in chain.split('.') {
                        last = part;
                        v = match v {
                            // Docker executes against its typed structs first: `.ID` is `Id`.
                            serde_json::Value::Object(map) => match map
                                .get(part)
                                .or_else(|| (part == "ID").then(|| map.get("Id")).flatten())
                            {
                                Some(next) => next,
                                None => {
                                    return Err(TemplateError::Execute(format!(
                                        "template: :1:2: executing \"\" at <.{chain}>: map has no entry for key \"{part}\""
                                    )));
                                }
                            },
                            _ => {
                                return Err(TemplateError::Execute(clean_error(&format!(
                                    "no field {part} for value"
                                ))));
                            }
                        };
                    }
                    match v {
                        serde_json::Value::Null => out.push_str(typed_nil(last)),
                        other => go_print(last, other, &mut out),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Renders every row followed by a newline; for a table, a header row first (each field's
    /// header from `headers`) and the whole output aligned like Docker's tabwriter.
    pub fn render_rows<R: Fields>(
        &self,
        rows: &[R],
        headers: &[(&str, &str)],
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        if self.table {
            out.push_str(&self.render_header(headers));
            out.push('\n');
        }
        for row in rows {
            out.push_str(&self.render_fields(row)?);
            out.push('\n');
        }
        Ok(if self.table { tabwrite(&out) } else { out })
    }

    fn render_header(&self, headers: &[(&str, &str)]) -> String {
        let map: HashMap<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.to_string())))
            .collect();
        // Fields without a header print empty, as with Docker's header map.
        self.render_one(&Value::Map(map)).unwrap_or_default()
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders one value (no newline added).
    pub fn render_one(&self, value: &Value) -> Result<String, TemplateError> {
        // gtmpl's printf panics on a width or precision over 65535, which Rust's formatting
        // takes no more of (`{{printf "%99999d" 1}}`, found by the `template` fuzz target;
        // Go's fmt prints `%!(BADWIDTH)` over a million): an error, as what it cannot print.
        quietly(|| {
            self.template
                .render(&Context::from(value.clone()))
                .map_err(|e| e.to_string())
        })
        .ok_or_else(|| {
            TemplateError::Execute(
                "template: :1: a width or precision too large to print (over 65535)".into(),
            )
        })?
        .map_err(|e| TemplateError::Execute(clean_error(&e)))
    }

    /// Renders every row followed by a newline; for a table, a header row first (each field's
    /// header from `headers`) and the whole output aligned like Docker's tabwriter.
    pub fn render(
        &self,
        rows: &[Value],
        headers: &[(&str, &str)],
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        if self.table {
            out.push_str(&self.render_header(headers));
            out.push('\n');
        }
        for row in rows {
            out.push_str(&self.render_one(row)?);
            out.push('\n');
        }
        Ok(if self.table { tabwrite(&out) } else { out })
    }
}

/// How Go prints a nil field of Docker's typed structs: `map[]` for maps, `[]` for slices.
fn typed_nil(key: &str) -> &'static str {
    match key {
        "Volumes" | "Labels" | "ExposedPorts" | "Data" | "Options" => "map[]",
        "Env" | "Cmd" | "Entrypoint" | "OnBuild" | "Shell" | "RepoTags" | "RepoDigests"
        | "Layers" | "Args" | "Mounts" => "[]",
        _ => "<no value>",
    }
}

/// Go's `%v` of a decoded JSON value: `[a b]`, `map[k:v]` (keys sorted), `<nil>` inside; the
/// empty objects of `ExposedPorts` and `Volumes` are `struct{}` in Docker's types: `{}`.
fn go_print(key: &str, v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map)
            if map.is_empty() && matches!(key, "ExposedPorts-entry" | "Volumes-entry") =>
        {
            out.push_str("{}")
        }
        serde_json::Value::Null => out.push_str("<nil>"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&n.to_string()),
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_print("", item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            out.push_str("map[");
            for (i, (k, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                let entry = match key {
                    "ExposedPorts" => "ExposedPorts-entry",
                    "Volumes" => "Volumes-entry",
                    _ => k.as_str(),
                };
                go_print(entry, item, out);
            }
            out.push(']');
        }
    }
}

/// Turns gtmpl's wording of a missing field (which dumps the whole receiver) into Go's.
fn clean_error(message: &str) -> String {
    if let Some(rest) = message.split("no field ").nth(1) {
        let field = rest.split(" for ").next().unwrap_or(rest);
        return format!("template: :1: executing \"\" at <.{field}>: can't evaluate field {field}");
    }
    message.to_string()
}

/// Go's `text/tabwriter` with Docker's settings (minwidth 10, tabwidth 1, padding 3, spaces):
/// cells end at `\t`; the text after a line's last tab is not aligned; a column's width is its
/// widest cell plus padding within each block of consecutive lines that have that column.
pub fn tabwrite(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    let mut widths: Vec<usize> = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        &mut out,
        MIN_WIDTH,
        PADDING,
    );
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
    min_width: usize,
    padding: usize,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, out, min_width, padding);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let w = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(w)));
            }
        }
        out.push('\n');
    }
}

/// A JSON document as a template value: objects become struct-like values, so a missing field
/// is an error as in Docker.
pub fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// A template value back to JSON (object keys sorted, like Go's encoding of maps).
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil | Value::NoValue | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0))
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
    }
}

fn arg<'a>(args: &'a [Value], name: &str, n: usize) -> Result<&'a Value, FuncError> {
    args.get(n)
        .ok_or_else(|| FuncError::ExactlyXArgs(name.into(), n + 1))
}

fn string_arg(args: &[Value], name: &str, n: usize) -> Result<String, FuncError> {
    Ok(match arg(args, name, n)? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    let v = to_json(arg(args, "json", 0)?);
    let text = serde_json::to_string(&v).map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(Value::from(crate::image::inspect::go_escape(&text)))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = string_arg(args, "join", 1)?;
    match arg(args, "join", 0)? {
        Value::Array(a) => Ok(Value::from(
            a.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join(&sep),
        )),
        other => Ok(Value::from(other.to_string())),
    }
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, "split", 0)?;
    let sep = string_arg(args, "split", 1)?;
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|p| Value::from(p.to_string()))
            .collect(),
    ))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg(args, "lower", 0)?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::from(string_arg(args, "upper", 0)?.to_uppercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, "title", 0)?;
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::from(out))
}

fn number_arg(args: &[Value], name: &str, n: usize) -> Result<usize, FuncError> {
    match arg(args, name, n)? {
        Value::Number(num) => num
            .as_u64()
            .map(|u| u as usize)
            .ok_or(FuncError::UnableToConvertFromValue),
        _ => Err(FuncError::UnableToConvertFromValue),
    }
}

/// The most spaces `pad` adds: a count from a `--format` typo (`{{pad .ID 9999999999999 0}}`)
/// otherwise aborted berth on an allocation failure (Docker's client
/// dies the same way); no terminal is this wide.
const MAX_PAD: usize = 1 << 20;

fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, "pad", 0)?;
    let before = number_arg(args, "pad", 1)?;
    let after = number_arg(args, "pad", 2)?;
    if before.saturating_add(after) > MAX_PAD {
        return Err(FuncError::Generic(format!(
            "pad: {before} + {after} spaces is more than {MAX_PAD}"
        )));
    }
    Ok(Value::from(format!(
        "{}{s}{}",
        " ".repeat(before),
        " ".repeat(after)
    )))
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(args, "truncate", 0)?;
    let n = number_arg(args, "truncate", 1)?;
    Ok(Value::from(s.chars().take(n).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `template` fuzz target: gtmpl's lexer panicked on this.
    #[test]
    fn a_template_gtmpl_cannot_lex_is_an_error() {
        let input = std::str::from_utf8(b"{{split .}}I{{defd \xde\x91n").unwrap();
        assert!(matches!(Format::parse(input), Err(TemplateError::Parse(_))));
    }

    /// Found by the `template` fuzz target: gtmpl's lexer never finished on a template that
    /// ends inside an action (it read the last character again and again), and `--format`
    /// hung. Each is parsed on a thread so that the test fails, not hangs, if one does again.
    #[test]
    fn a_template_that_ends_inside_an_action_is_an_error() {
        for input in [
            "{{1",
            "{{ .ID\t",
            "x{{ \t",
            "{{.ID}} {{-3",
            "{{ \"a\" ",
            "{{.ID",
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Format::parse(input).map(|_| ()).map_err(|e| e.to_string()));
            });
            let result = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("parsing {input:?} did not finish"));
            assert_eq!(
                result,
                Err("template parsing error: template: :1: unclosed action".to_string()),
                "{input:?}"
            );
        }
        // The text after the last action is still the template's, as is a `\r` in it.
        let f = Format::parse("{{.ID}}\r ").unwrap();
        assert_eq!(f.render_one(&row("a", "b")).unwrap(), "a\r");
    }

    /// Found by the `template` fuzz target: gtmpl's unquoting of a string constant never
    /// finished on a `\u` or `\x` near the string's end. Parsed on a thread, as above.
    #[test]
    fn a_string_gtmpl_cannot_unquote_is_an_error() {
        for (input, line) in [
            ("{{printf \"\\u}f \" .ID}}", 1),
            ("a\n{{ `\\x` }}", 2),
            ("{{\"\\x+1\\x\"}}", 1),
            ("{{\"ok\"}}{{/* \"\\u\" */}}{{ \"\\u12\" }}", 1),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Format::parse(input).map(|_| ()).map_err(|e| e.to_string()));
            });
            let result = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("parsing {input:?} did not finish"));
            assert_eq!(
                result,
                Err(format!(
                    "template parsing error: template: :{line}: invalid syntax"
                )),
                "{input:?}"
            );
        }
        // Escapes gtmpl reads, and strings that only look like those.
        let f = Format::parse(r#"{{"\x41\\u" | lower}} \u {{`a"b`}}"#).unwrap();
        assert_eq!(f.render_one(&row("a", "b")).unwrap(), r#"a\u \u a"b"#);
    }

    /// Found by the `template` fuzz target: gtmpl's printf panicked on a width over 65535.
    #[test]
    fn a_printf_width_too_large_to_print_is_an_error() {
        for format in [
            "{{printf \"%99999d\" 1}}",
            "{{printf \"%.99999f\" 1.5}}",
            "{{printf \"%*d\" 99999 1}}",
        ] {
            let f = Format::parse(format).unwrap();
            let err = f.render_one(&row("a", "b")).unwrap_err().to_string();
            assert!(err.contains("too large"), "{format}: {err}");
        }
        let f = Format::parse("{{printf \"%5d|%.2f\" 42 1.5}}").unwrap();
        assert_eq!(f.render_one(&row("a", "b")).unwrap(), "   42|1.50");
    }

    /// Found by the `template` fuzz target: gtmpl's parser overflowed the stack on 4000
    /// nested parentheses.
    #[test]
    fn parentheses_nested_too_deep_are_an_error() {
        let nested = |n: usize| format!("{{{{{}1{}}}}}", "(".repeat(n), ")".repeat(n));
        let err = Format::parse(&nested(4000)).err().unwrap().to_string();
        assert_eq!(
            err,
            "template parsing error: template: :1: max expression depth exceeded"
        );
        assert!(Format::parse(&nested(201)).is_err());
        // The deepest taken, on a stack as big as a main thread's (a test's is 2 MB, which a
        // debug build's recursion overflows).
        let rendered = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                Format::parse(&nested(200))
                    .unwrap()
                    .render_one(&row("a", "b"))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(rendered.unwrap(), "1");
    }

    /// Found by the `template` fuzz target: gtmpl overflowed the stack on 3000 nested `if`s
    /// and on a template that calls itself.
    #[test]
    fn blocks_nested_too_deep_and_template_calls_are_errors() {
        let nested = |n: usize| format!("{}1{}", "{{if 1}}".repeat(n), "{{end}}".repeat(n));
        let err = Format::parse(&nested(3000)).err().unwrap().to_string();
        assert_eq!(
            err,
            "template parsing error: template: :1: max expression depth exceeded"
        );
        assert!(Format::parse(&nested(201)).is_err());
        // Blocks one after the other are not nested.
        let flat = "{{if 1}}a{{end}}".repeat(300);
        assert_eq!(
            Format::parse(&flat)
                .unwrap()
                .render_one(&row("a", "b"))
                .unwrap(),
            "a".repeat(300)
        );
        for calls in [
            "{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}",
            "{{block \"b\" .}}x{{end}}",
            "{{- template \"x\"}}",
        ] {
            let err = Format::parse(calls).err().unwrap().to_string();
            assert!(
                err.contains("define, template and block are not supported"),
                "{calls}: {err}"
            );
        }
        // The words inside another action are not actions of their own.
        assert_eq!(
            Format::parse("{{printf \"%s\" \"template\"}}")
                .unwrap()
                .render_one(&row("a", "b"))
                .unwrap(),
            "template"
        );
    }

    /// Seen while writing the `template` fuzz target: this aborted on a 9 TB allocation.
    #[test]
    fn a_huge_pad_is_an_error() {
        let f = Format::parse("{{pad .ID 9999999999999 1}}").unwrap();
        let err = f.render_one(&row("abc", "busybox")).unwrap_err();
        assert!(err.to_string().contains("pad"), "{err}");
        let f = Format::parse("{{pad .ID 1 2}}").unwrap();
        assert_eq!(f.render_one(&row("abc", "busybox")).unwrap(), " abc  ");
    }

    fn row(id: &str, repo: &str) -> Value {
        from_json(&serde_json::json!({"ID": id, "Repository": repo, "Size": "1MB"}))
    }

    #[test]
    fn tables_align_like_tabwriter() {
        let f = Format::parse("table {{.ID}}\\t{{.Repository}}\\t{{.Size}}").unwrap();
        let out = f
            .render(
                &[row("abc", "busybox"), row("def", "a-much-longer-name")],
                &[
                    ("ID", "IMAGE ID"),
                    ("Repository", "REPOSITORY"),
                    ("Size", "SIZE"),
                ],
            )
            .unwrap();
        assert_eq!(
            out,
            "IMAGE ID   REPOSITORY           SIZE\n\
             abc        busybox              1MB\n\
             def        a-much-longer-name   1MB\n"
        );
    }

    #[test]
    fn json_documents_print_like_go() {
        let doc = serde_json::json!({
            "Id": "sha256:x",
            "Config": {"Env": ["A=1", "B=2"], "Cmd": null, "Volumes": null,
                       "ExposedPorts": {"80/tcp": {}}, "Labels": {"b": "2", "a": "1"}},
            "Size": 12
        });
        let f = Format::parse(
            "{{.ID}} {{.Config.Env}} {{.Config.Cmd}} {{.Config.Volumes}} {{.Config.ExposedPorts}} {{.Config.Labels}} {{.Size}}",
        )
        .unwrap();
        assert_eq!(
            f.render_json(&doc).unwrap(),
            "sha256:x [A=1 B=2] [] map[] map[80/tcp:{}] map[a:1 b:2] 12"
        );
        assert!(
            Format::parse("{{.Config.Nope}}")
                .unwrap()
                .render_json(&doc)
                .is_err()
        );
        // Anything beyond field chains goes through gtmpl.
        let f = Format::parse("{{index .Config.Labels \"a\"}}{{if .Size}}!{{end}}").unwrap();
        assert_eq!(f.render_json(&doc).unwrap(), "1!");
    }

    #[test]
    fn templates_are_go_templates() {
        let f =
            Format::parse("{{.ID}}: {{.Repository}}{{if eq .Size \"1MB\"}} small{{end}}").unwrap();
        assert_eq!(f.render_one(&row("a", "b")).unwrap(), "a: b small");
        let f = Format::parse("{{json .}}").unwrap();
        assert_eq!(
            f.render_one(&row("a", "<b>")).unwrap(),
            r#"{"ID":"a","Repository":"\u003cb\u003e","Size":"1MB"}"#
        );
        assert!(Format::parse("{{.ID").is_err());
        let f = Format::parse("{{.Nope}}").unwrap();
        assert!(f.render_one(&row("a", "b")).is_err());
        let f = Format::parse("{{.Repository | upper}} {{lower \"X\"}}").unwrap();
        assert_eq!(f.render_one(&row("a", "b")).unwrap(), "B x");
    }
}
