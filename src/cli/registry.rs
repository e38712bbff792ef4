//! Registry commands: `pull`, `push`, `search`, `login`, `logout`.

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Read};
use std::sync::Mutex;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format::ellipsis;
use super::progress::{PullPrinter, bar_text, terminal_columns};
use super::template;
use super::{CliResult, Context, Failure, Verb, print};
use crate::image::manifest::Platform;
use crate::image::pull::{self, PullOptions, PullStatus};
use crate::image::push::{self, LayerStatus, PushEvent};
use crate::image::reference::Reference;
use crate::image::registry::Registry;
use crate::image::registry::auth::{Credentials, DOCKER_HUB_AUTH_KEY};
use crate::image::registry::login;
use crate::image::search::{self, Filters};
use crate::image::store::Store;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

/// Docker's `pull` fails as a client request does: a bad reference or flag is the client's own
/// refusal (the message alone), anything else is the daemon's ("Error response from daemon:
/// …"); both exit 1. (125 is `docker run`'s code for its own failures, not pull's.)
impl Verb for PullArgs {
    fn run(self, context: &Context) -> CliResult {
        let named = Reference::parse_named(&self.name).map_err(Failure::client)?;
        if self.all_tags && (named.tag.is_some() || named.digest.is_some()) {
            return Err(Failure::client("tag can't be used with --all-tags/-a"));
        }
        let platform = Platform::parse_flag(self.platform.as_deref()).map_err(Failure::daemon)?;
        let printer = PullPrinter::new(self.quiet, std::io::stdout().is_terminal());
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        let registry = Registry::new(&named.domain, &context.config);
        let options = PullOptions { platform };
        let on_event = |event| printer.event(event);

        let references = if self.all_tags {
            let tags = pull::list_tags(&registry, &named).map_err(Failure::daemon)?;
            tags.iter().map(|t| named.with_tag(t)).collect()
        } else {
            if named.tag.is_none() && named.digest.is_none() {
                printer.line("Using default tag: latest");
            }
            vec![Reference::parse(&self.name).map_err(Failure::client)?]
        };
        let mut downloaded = false;
        let mut last = None;
        for reference in &references {
            let pulled = pull::pull(&store, &registry, reference, &options, &on_event);
            let pulled = match pulled {
                Ok(p) => p,
                Err(e) => {
                    printer.finish();
                    return Err(Failure::daemon(e));
                }
            };
            downloaded |= pulled.status == PullStatus::Downloaded;
            last = Some(pulled);
        }
        printer.finish();
        let Some(last) = last else {
            return Err(Failure::daemon(format!(
                "no tags found for {}",
                named.familiar_repository()
            )));
        };
        let (shown, canonical) = if self.all_tags {
            (named.familiar_repository(), named.repository())
        } else {
            let r = &references[0];
            (r.familiar(), r.to_string())
        };
        if !self.all_tags {
            printer.line(&format!("Digest: {}", last.digest));
        }
        printer.line(&if downloaded {
            format!("Status: Downloaded newer image for {shown}")
        } else {
            format!("Status: Image is up to date for {shown}")
        });
        println!("{canonical}");
        Ok(0)
    }
}

// ---- push ----

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

impl Verb for PushArgs {
    fn run(self, context: &Context) -> CliResult {
        let named = Reference::parse_named(&self.name).map_err(Failure::client)?;
        if named.digest.is_some() {
            return Err(Failure::client("cannot push a digest reference"));
        }
        if self.all_tags && named.tag.is_some() {
            return Err(Failure::client("tag can't be used with --all-tags/-a"));
        }
        let store = Store::open(&context.root).map_err(Failure::daemon)?;
        let references = if self.all_tags {
            let tags = push::local_tags(&store, &named).map_err(Failure::daemon)?;
            if tags.is_empty() {
                return Err(Failure::client(format!(
                    "An image does not exist locally with the tag: {}",
                    named.familiar_repository()
                )));
            }
            tags
        } else {
            if named.tag.is_none() && !self.quiet {
                println!("Using default tag: latest");
            }
            vec![named.with_tag(named.tag.as_deref().unwrap_or("latest"))]
        };
        let registry = Registry::new(&named.domain, &context.config);
        let quiet = self.quiet;
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
            let pushed = pushed.map_err(Failure::client)?;
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

// ---- search ----

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

impl Verb for SearchArgs {
    fn run(self, context: &Context) -> CliResult {
        let filters = Filters::parse(&self.filter).map_err(Failure::client)?;
        let results = search::search(&context.config, &self.term, self.limit, &filters)
            .map_err(Failure::daemon)?;
        let template = self.format.unwrap_or_else(|| {
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
                        if self.no_trunc { d } else { ellipsis(&d, 45) }
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
            template::tabwrite(&(lines.join("\n") + "\n"))
        } else {
            lines.join("\n") + if lines.is_empty() { "" } else { "\n" }
        };
        print!("{text}");
        Ok(0)
    }
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

// ---- login / logout ----

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// SERVER
    pub server: Option<String>,
}

fn prompt_line(prompt: &str) -> Option<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

fn prompt_password() -> Option<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).ok()?;
    let mut silent = saved.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(&stdin, SetArg::TCSANOW, &silent).ok()?;
    let line = prompt_line("Password: ");
    let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    line
}

impl Verb for LoginArgs {
    fn run(self, context: &Context) -> CliResult {
        if self.password.is_some() && self.password_stdin {
            return Err(Failure::client(
                "--password and --password-stdin are mutually exclusive",
            ));
        }
        if self.password_stdin && self.username.is_none() {
            return Err(Failure::client(
                "Must provide --username with --password-stdin",
            ));
        }
        if self.password.is_some() {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        }
        let key = login::server_key(self.server.as_deref());
        let mut password = self.password.clone();
        if self.password_stdin {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(Failure::berth)?;
            password = Some(
                buf.trim_end_matches('\n')
                    .trim_end_matches('\r')
                    .to_string(),
            );
        }
        let interactive = std::io::stdin().is_terminal();
        let username = match self.username.clone() {
            Some(u) => u,
            None if interactive => {
                let default = login::stored_username(&key);
                let prompt = match &default {
                    Some(d) => format!("Username ({d}): "),
                    None => "Username: ".into(),
                };
                let typed = prompt_line(&prompt).unwrap_or_default();
                if typed.is_empty() {
                    default.unwrap_or_default()
                } else {
                    typed
                }
            }
            None => {
                return Err(Failure::client(
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
        };
        if username.is_empty() {
            return Err(Failure::client("Error: Non-null Username Required"));
        }
        let password = match password {
            Some(p) => p,
            None if interactive => prompt_password().unwrap_or_default(),
            None => {
                return Err(Failure::client(
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
        };
        if password.is_empty() {
            return Err(Failure::client("Error: Password Required"));
        }
        let credentials = Credentials { username, password };
        login::verify(&context.config, &key, &credentials).map_err(Failure::daemon)?;
        let path = login::store(&key, &credentials).map_err(Failure::berth)?;
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            path.display()
        );
        print("Login Succeeded\n");
        Ok(0)
    }
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER
    pub server: Option<String>,
}

impl Verb for LogoutArgs {
    fn run(self, _context: &Context) -> CliResult {
        let key = login::server_key(self.server.as_deref());
        let shown = if key == DOCKER_HUB_AUTH_KEY {
            key.clone()
        } else {
            login::hostname(&key)
        };
        print(&format!("Removing login credentials for {shown}\n"));
        login::erase(&key).map_err(Failure::berth)?;
        Ok(0)
    }
}
