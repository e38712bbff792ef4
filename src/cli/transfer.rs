//! Filesystem and image transfer commands: `export`, `import`, `diff`, `commit`, `save`,
//! `load`, `push`, `search`. Flags and printing only; the work is in `archive/` and `image/`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Mutex;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::{bar_text, terminal_columns};
use super::{CliResult, Context, Failure};
use crate::archive::diff;
use crate::archive::export;
use crate::container::commit::{self, CommitOptions};
use crate::container::lifecycle;
use crate::container::store::ContainerStore;
use crate::image::docker_archive;
use crate::image::import::{self, ImportOptions};
use crate::image::manifest::Platform;
use crate::image::push::{self, LayerStatus, PushEvent};
use crate::image::reference::Reference;
use crate::image::registry::Registry;
use crate::image::search::{self, Filters};
use crate::image::store::Store;

/// Docker reports what the daemon refused as "Error response from daemon: …", exit 1.
fn daemon(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: format!("Error response from daemon: {e}"),
    }
}

/// A client-side error (bad flags, a terminal as output): the message alone, exit 1.
fn client(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: e.to_string(),
    }
}

const TERMINAL: &str = "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Where an archive goes: a regular file (written beside it and renamed when complete, so a
/// failure leaves no half archive), any other file (a device, a pipe: written in place), or
/// stdout.
enum Output {
    File { temp: PathBuf, path: PathBuf },
    Special(PathBuf),
    Stdout,
}

impl Output {
    fn new(path: Option<&Path>) -> Result<Output, Failure> {
        match path {
            Some(path) if path != Path::new("-") => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                match std::fs::metadata(&path) {
                    Ok(meta) if !meta.is_file() => return Ok(Output::Special(path)),
                    _ => {}
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = path.with_file_name(format!(".{name}.berth-tmp"));
                Ok(Output::File { temp, path })
            }
            _ => {
                if io::stdout().is_terminal() {
                    return Err(client(TERMINAL));
                }
                Ok(Output::Stdout)
            }
        }
    }

    fn write<T>(
        &self,
        body: impl FnOnce(Box<dyn Write>) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let failed = |path: &Path, e: io::Error| {
            client(format!("failed to save to {}: {e}", path.display()))
        };
        match self {
            Output::Stdout => body(Box::new(BufWriter::new(io::stdout().lock()))),
            Output::Special(path) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| failed(path, e))?;
                if file.is_terminal() {
                    return Err(client(TERMINAL));
                }
                body(Box::new(BufWriter::new(file)))
            }
            Output::File { temp, path } => {
                let file = File::create(temp).map_err(|e| failed(path, e))?;
                match body(Box::new(BufWriter::new(file))) {
                    Ok(v) => {
                        std::fs::rename(temp, path).map_err(|e| failed(path, e))?;
                        Ok(v)
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(temp);
                        Err(e)
                    }
                }
            }
        }
    }
}

fn flush(mut w: Box<dyn Write>) -> Result<(), Failure> {
    w.flush()
        .map_err(|e| client(format!("writing archive: {e}")))
}

// ---------------------------------------------------------------- export

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

pub fn export(context: &Context, args: ExportArgs) -> CliResult {
    let output = Output::new(args.output.as_deref())?;
    let containers = ContainerStore::open(&context.root).map_err(daemon)?;
    let dir = containers.find(&args.container).map_err(daemon)?;
    let record = dir.record().map_err(daemon)?;
    let store = Store::open(&context.root).map_err(daemon)?;
    let scratch = store.temp_dir("export").map_err(daemon)?;
    let created = crate::time::Timestamp::parse_rfc3339(&record.created)
        .map(|t| t.secs.max(0) as u64)
        .unwrap_or(0);
    let upper = dir.path.join("upper");
    let state = lifecycle::current_state(&dir).map_err(daemon)?;
    let running = state.status.is_running();
    output.write(|w| {
        // A running container is read through its own root mount; a stopped one (or when
        // that is not possible) through a read-only overlay of its layers.
        let w = if running {
            export::export_running(state.pid, created, w).map_err(daemon)?
        } else {
            Err(w)
        };
        let w = match w {
            Ok(w) => w,
            Err(w) => export::export(&upper, &record.layers, scratch.path(), created, w)
                .map_err(daemon)?,
        };
        flush(w)
    })?;
    Ok(0)
}

// ---------------------------------------------------------------- diff

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

pub fn diff(context: &Context, args: DiffArgs) -> CliResult {
    let containers = ContainerStore::open(&context.root).map_err(daemon)?;
    let dir = containers.find(&args.container).map_err(daemon)?;
    let record = dir.record().map_err(daemon)?;
    let changes = diff::changes(&dir.path.join("upper"), &record.layers).map_err(daemon)?;
    let mut out = io::stdout().lock();
    for change in changes {
        let _ = writeln!(out, "{} {}", change.kind.letter(), change.path.display());
    }
    Ok(0)
}

// ---------------------------------------------------------------- commit

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value = "true", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

fn named_tag(input: &str) -> Result<Reference, Failure> {
    let named = Reference::parse_named(input).map_err(client)?;
    if named.digest.is_some() {
        return Err(client(format!(
            "invalid reference format: {input} (a digest is not a tag)"
        )));
    }
    let tag = named.tag.clone().unwrap_or_else(|| "latest".into());
    Ok(named.with_tag(&tag))
}

pub fn commit(context: &Context, args: CommitArgs) -> CliResult {
    let tag = args.repository.as_deref().map(named_tag).transpose()?;
    let store = Store::open(&context.root).map_err(daemon)?;
    let options = CommitOptions {
        author: args.author,
        message: args.message,
        changes: args.change,
        pause: args.pause,
        tag,
    };
    let id = commit::commit(&context.root, &store, &args.container, &options).map_err(daemon)?;
    println!("{id}");
    Ok(0)
}

// ---------------------------------------------------------------- import

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

pub fn import(context: &Context, args: ImportArgs) -> CliResult {
    let tag = args.repository.as_deref().map(named_tag).transpose()?;
    let platform = Platform::parse_flag(args.platform.as_deref()).map_err(client)?;
    if args.source == "-" && io::stdin().is_terminal() {
        return Err(client(
            "requested import from stdin, but stdin is a terminal",
        ));
    }
    let store = Store::open(&context.root).map_err(daemon)?;
    let options = ImportOptions {
        changes: args.change,
        message: args.message,
        platform,
        tag,
    };
    let id = import::import(&store, &args.source, &options).map_err(daemon)?;
    println!("{id}");
    Ok(0)
}

// ---------------------------------------------------------------- save / load

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn save(context: &Context, args: SaveArgs) -> CliResult {
    let output = Output::new(args.output.as_deref())?;
    let store = Store::open(&context.root).map_err(daemon)?;
    let items = docker_archive::resolve_save_items(&store, &args.images).map_err(daemon)?;
    output.write(|w| {
        let w = docker_archive::save(&store, &items, w).map_err(daemon)?;
        flush(w)
    })?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn load(context: &Context, args: LoadArgs) -> CliResult {
    let store = Store::open(&context.root).map_err(daemon)?;
    // Like Docker: progress bars only on a terminal and without -q.
    let printer = LoadPrinter::new(!args.quiet && io::stdout().is_terminal());
    let on_progress = |p: docker_archive::LoadProgress| printer.event(p);
    let loaded = match &args.input {
        Some(path) => {
            let file =
                File::open(path).map_err(|e| client(format!("open {}: {e}", path.display())))?;
            docker_archive::load(&store, file, &on_progress)
        }
        None => {
            if io::stdin().is_terminal() {
                return Err(client("requested load from stdin, but stdin is empty"));
            }
            docker_archive::load(&store, io::stdin().lock(), &on_progress)
        }
    };
    printer.finish();
    let loaded = loaded.map_err(daemon)?;
    for image in loaded {
        for (tag, old) in &image.replaced {
            println!(
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                tag.familiar()
            );
        }
        if image.tags.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for tag in image.tags {
            println!("Loaded image: {}", tag.familiar());
        }
    }
    Ok(0)
}

// ---------------------------------------------------------------- push

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image signing (accepted for Docker compatibility; berth does not sign)
    #[arg(long = "disable-content-trust", default_value = "true", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    pub name: String,
}

pub fn push(context: &Context, args: PushArgs) -> CliResult {
    let named = Reference::parse_named(&args.name).map_err(client)?;
    if named.digest.is_some() {
        return Err(client("cannot push a digest reference"));
    }
    if args.all_tags && named.tag.is_some() {
        return Err(client("tag can't be used with --all-tags/-a"));
    }
    let store = Store::open(&context.root).map_err(daemon)?;
    let references = if args.all_tags {
        let tags = push::local_tags(&store, &named).map_err(daemon)?;
        if tags.is_empty() {
            return Err(client(format!(
                "An image does not exist locally with the tag: {}",
                named.familiar_repository()
            )));
        }
        tags
    } else {
        if named.tag.is_none() && !args.quiet {
            println!("Using default tag: latest");
        }
        vec![named.with_tag(named.tag.as_deref().unwrap_or("latest"))]
    };
    let registry = Registry::new(&named.domain, &context.config);
    let quiet = args.quiet;
    if !quiet {
        println!(
            "The push refers to repository [{}]",
            named.familiar_repository()
        );
    }
    for reference in &references {
        let printer = PushPrinter::new(quiet, io::stdout().is_terminal());
        let on_event = |event: PushEvent| printer.event(event);
        // Docker prints push failures bare, as they come from its progress stream.
        let pushed = push::push(&store, &registry, reference, &on_event);
        printer.finish();
        let pushed = pushed.map_err(client)?;
        if quiet {
            println!("{}", reference.familiar());
        } else {
            println!(
                "{}: digest: {} size: {}",
                pushed.tag, pushed.digest, pushed.size
            );
        }
    }
    Ok(0)
}

/// Docker's push output: on a terminal a live line per layer with a progress bar while it
/// uploads; otherwise one plain line per status change.
struct PushPrinter {
    quiet: bool,
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl PushPrinter {
    fn new(quiet: bool, terminal: bool) -> PushPrinter {
        PushPrinter {
            quiet,
            live: (!quiet && terminal)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10))),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn event(&self, event: PushEvent) {
        if self.quiet {
            return;
        }
        let PushEvent::Layer { id, status } = event;
        let text = match &status {
            LayerStatus::Preparing => "Preparing".to_string(),
            LayerStatus::Waiting => "Waiting".to_string(),
            LayerStatus::Pushing { current, total } => {
                format!(
                    "Pushing {}",
                    bar_text(*current, *total, terminal_columns(false))
                )
            }
            LayerStatus::Pushed => "Pushed".to_string(),
            LayerStatus::AlreadyExists => "Layer already exists".to_string(),
            LayerStatus::MountedFrom(from) => format!("Mounted from {from}"),
        };
        let Some(live) = &self.live else {
            if !matches!(status, LayerStatus::Pushing { .. }) {
                println!("{id}: {text}");
            }
            return;
        };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let bar = live.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{prefix}: {wide_msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(id.clone());
            bar
        });
        bar.set_message(text);
    }

    fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}

/// `docker load` on a terminal: a `Loading layer` bar per layer.
struct LoadPrinter {
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl LoadPrinter {
    fn new(enabled: bool) -> LoadPrinter {
        LoadPrinter {
            live: enabled
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10))),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn event(&self, p: docker_archive::LoadProgress) {
        let Some(live) = &self.live else {
            return;
        };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars.entry(p.id.clone()).or_insert_with(|| {
            let bar = live.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{prefix}: {wide_msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(p.id.clone());
            bar
        });
        bar.set_message(format!(
            "Loading layer {}",
            bar_text(p.current, p.total, terminal_columns(false))
        ));
    }

    fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}

// ---------------------------------------------------------------- search

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub term: String,
}

pub fn search(context: &Context, args: SearchArgs) -> CliResult {
    let filters = Filters::parse(&args.filter).map_err(client)?;
    let results =
        search::search(&context.config, &args.term, args.limit, &filters).map_err(daemon)?;
    let template = args.format.unwrap_or_else(|| {
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}".into()
    });
    let (table, template) = match template.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start().to_string()),
        None => (false, template),
    };
    let template = template.replace("\\t", "\t");
    let render = |r: Option<&search::SearchResult>| -> String {
        let field = |name: &str| -> String {
            match (name, r) {
                ("Name", Some(r)) => r.name.clone(),
                ("Name", None) => "NAME".into(),
                ("Description", Some(r)) => {
                    let d = r.description.replace(['\n', '\r'], " ");
                    if args.no_trunc { d } else { ellipsis(&d, 45) }
                }
                ("Description", None) => "DESCRIPTION".into(),
                ("StarCount", Some(r)) => r.star_count.to_string(),
                ("StarCount", None) => "STARS".into(),
                ("IsOfficial", Some(r)) => {
                    if r.is_official {
                        "[OK]".into()
                    } else {
                        String::new()
                    }
                }
                ("IsOfficial", None) => "OFFICIAL".into(),
                ("IsAutomated", Some(r)) => {
                    if r.is_automated {
                        "[OK]".into()
                    } else {
                        String::new()
                    }
                }
                ("IsAutomated", None) => "AUTOMATED".into(),
                _ => String::new(),
            }
        };
        expand(&template, &field)
    };
    let mut lines = Vec::new();
    if table {
        lines.push(render(None));
    }
    for r in &results {
        lines.push(render(Some(r)));
    }
    let text = if table {
        tabwrite(&lines)
    } else {
        lines.join("\n") + if lines.is_empty() { "" } else { "\n" }
    };
    print!("{text}");
    Ok(0)
}

/// Replaces `{{.Field}}` (spaces allowed inside the braces) with `field(Field)`.
fn expand(template: &str, field: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = rest[start + 2..start + end].trim();
        out.push_str(&field(inner.trim_start_matches('.')));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Go's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` as Docker's tables use it: every
/// tab-terminated cell padded to max(width + 3, 10); the last cell of a line is not padded.
fn tabwrite(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max((cell.chars().count() + 3).max(10));
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}
