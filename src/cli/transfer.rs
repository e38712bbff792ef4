//! Filesystem and archive commands: `export`, `import`, `diff`, `commit`, `save`, `load`.
//! Flags and printing only; the work is in `container/`, `image/` and `archive/`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Mutex;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::{bar_text, terminal_columns};
use super::{CliResult, Context, Failure, Verb};
use crate::archive::diff;
use crate::container::commit::{self, CommitOptions};
use crate::container::export;
use crate::container::store::ContainerStore;
use crate::image::docker_archive;
use crate::image::import::{self, ImportOptions};
use crate::image::manifest::Platform;
use crate::image::reference::Reference;
use crate::image::store::Store;

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
                    return Err(Failure::client(TERMINAL));
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
            Failure::client(format!("failed to save to {}: {e}", path.display()))
        };
        match self {
            Output::Stdout => body(Box::new(BufWriter::new(io::stdout().lock()))),
            Output::Special(path) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| failed(path, e))?;
                if file.is_terminal() {
                    return Err(Failure::client(TERMINAL));
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
        .map_err(|e| Failure::client(format!("writing archive: {e}")))
}

// ---------------------------------------------------------------- export

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

impl Verb for ExportArgs {
    fn run(self, context: &Context) -> CliResult {
        let output = Output::new(self.output.as_deref())?;
        let containers = ContainerStore::open(&context.root).map_err(Failure::daemon)?;
        let dir = containers.find(&self.container).map_err(Failure::daemon)?;
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        output.write(|w| flush(export::export(&dir, &store, w).map_err(Failure::daemon)?))?;
        Ok(0)
    }
}

// ---------------------------------------------------------------- diff

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

impl Verb for DiffArgs {
    fn run(self, context: &Context) -> CliResult {
        let containers = ContainerStore::open(&context.root).map_err(Failure::daemon)?;
        let dir = containers.find(&self.container).map_err(Failure::daemon)?;
        let record = dir.record().map_err(Failure::daemon)?;
        let changes =
            diff::changes(&dir.path.join("upper"), &record.layers).map_err(Failure::daemon)?;
        let mut out = io::stdout().lock();
        for change in changes {
            let _ = writeln!(out, "{} {}", change.kind.letter(), change.path.display());
        }
        Ok(0)
    }
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
    let named = Reference::parse_named(input).map_err(Failure::client)?;
    if named.digest.is_some() {
        return Err(Failure::client(format!(
            "invalid reference format: {input} (a digest is not a tag)"
        )));
    }
    let tag = named.tag.clone().unwrap_or_else(|| "latest".into());
    Ok(named.with_tag(&tag))
}

impl Verb for CommitArgs {
    fn run(self, context: &Context) -> CliResult {
        let tag = self.repository.as_deref().map(named_tag).transpose()?;
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        let options = CommitOptions {
            author: self.author,
            message: self.message,
            changes: self.change,
            pause: self.pause,
            tag,
        };
        let id = commit::commit(&context.root, &store, &self.container, &options)
            .map_err(Failure::daemon)?;
        println!("{id}");
        Ok(0)
    }
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

impl Verb for ImportArgs {
    fn run(self, context: &Context) -> CliResult {
        let tag = self.repository.as_deref().map(named_tag).transpose()?;
        let platform = Platform::parse_flag(self.platform.as_deref()).map_err(Failure::client)?;
        if self.source == "-" && io::stdin().is_terminal() {
            return Err(Failure::client(
                "requested import from stdin, but stdin is a terminal",
            ));
        }
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        let options = ImportOptions {
            changes: self.change,
            message: self.message,
            platform,
            tag,
        };
        let id = import::import(&store, &self.source, &options).map_err(Failure::daemon)?;
        println!("{id}");
        Ok(0)
    }
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

impl Verb for SaveArgs {
    fn run(self, context: &Context) -> CliResult {
        let output = Output::new(self.output.as_deref())?;
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        let items =
            docker_archive::resolve_save_items(&store, &self.images).map_err(Failure::daemon)?;
        output.write(|w| {
            let w = docker_archive::save(&store, &items, w).map_err(Failure::daemon)?;
            flush(w)
        })?;
        Ok(0)
    }
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

impl Verb for LoadArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        // Like Docker: progress bars only on a terminal and without -q.
        let printer = LoadPrinter::new(!self.quiet && io::stdout().is_terminal());
        let on_progress = |p: docker_archive::LoadProgress| printer.event(p);
        let loaded = match &self.input {
            Some(path) => {
                let file = File::open(path)
                    .map_err(|e| Failure::client(format!("open {}: {e}", path.display())))?;
                docker_archive::load(&store, file, &on_progress)
            }
            None => {
                if io::stdin().is_terminal() {
                    return Err(Failure::client(
                        "requested load from stdin, but stdin is empty",
                    ));
                }
                docker_archive::load(&store, io::stdin().lock(), &on_progress)
            }
        };
        printer.finish();
        let loaded = loaded.map_err(Failure::daemon)?;
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
