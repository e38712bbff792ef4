//! Printing for the image-management commands: `images`/`image ls`, `rmi`/`image rm`,
//! `image prune`, `tag`, `inspect`/`image inspect`, `history`, `system df`, `login`/`logout`.
//! Logic lives in `image/`; this file parses flags and prints Docker's output.

use std::io::{BufRead, IsTerminal, Read, Write};

use clap::{ArgAction, Args};
use gtmpl::Value;

use super::format::{ellipsis, human_size, time_ago};
use super::template::{self, Format, TemplateError};
use super::{CliResult, Context, Failure};
use crate::container::in_use;
use crate::image::history;
use crate::image::index;
use crate::image::inspect;
use crate::image::list::{self, Filters, ListOptions, ListedImage};
use crate::image::registry::auth::Credentials;
use crate::image::registry::login;
use crate::image::remove::{self, Deletion};
use crate::image::store::Store;
use crate::image::usage;
use crate::time::Timestamp;

/// Docker's exit code for errors the daemon reports (`Error response from daemon: …`).
const DAEMON_ERROR: i32 = 1;

fn daemon(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: DAEMON_ERROR,
        message: format!("Error response from daemon: {e}"),
    }
}

/// Errors the docker CLI itself reports (`docker` prints them bare and exits 1).
fn client(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: e.to_string(),
    }
}

/// A bad template: one clear line, exit 125 (Docker itself exits 1 here; the issue asks 125).
fn template_failure(e: TemplateError) -> Failure {
    Failure::berth(e)
}

fn open_store(context: &Context) -> Result<Store, Failure> {
    Store::open(&context.root).map_err(Failure::berth)
}

fn filter_failure(value: &str) -> Failure {
    Failure::berth(format!(
        "invalid argument \"{value}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\nSee 'berth images --help'."
    ))
}

fn parse_filters(values: &[String]) -> Result<Filters, Failure> {
    for v in values {
        if !v.contains('=') {
            return Err(filter_failure(v));
        }
    }
    Filters::parse(values).map_err(Failure::berth)
}

fn print(out: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

// ---- images ----

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

fn short_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        hex.get(..12).unwrap_or(hex).to_string()
    }
}

/// Docker's `imageContext` fields for one row, computed when a template asks for them.
struct ImageRow<'a> {
    image: &'a ListedImage,
    row: list::Row,
    no_trunc: bool,
    now: i64,
    /// Shared size and container count (`system df -v`); "N/A" in `images`.
    extra: Option<(u64, usize)>,
}

impl template::Fields for ImageRow<'_> {
    fn names(&self) -> &'static [&'static str] {
        &[
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize",
        ]
    }

    fn field(&self, name: &str) -> Option<String> {
        let image = self.image;
        Some(match name {
            "ID" => short_id(image.id.as_str(), self.no_trunc),
            "Repository" => self.row.repository.clone(),
            "Tag" => self.row.tag.clone(),
            "Digest" => self.row.digest.clone(),
            "CreatedSince" => {
                if image.created.secs == 0 && image.summary.created.is_none() {
                    "N/A".to_string()
                } else {
                    time_ago(image.created.secs, self.now)
                }
            }
            "CreatedAt" => image.created.go_string(),
            "Size" => human_size(image.size, 3),
            "VirtualSize" => human_size(image.size, 4),
            "Containers" => match self.extra {
                Some((_, n)) => n.to_string(),
                None => "N/A".into(),
            },
            "SharedSize" => match self.extra {
                Some((shared, _)) => human_size(shared, 4),
                None => "N/A".into(),
            },
            "UniqueSize" => match self.extra {
                Some((shared, _)) => human_size(image.size.saturating_sub(shared), 4),
                None => "N/A".into(),
            },
            _ => return None,
        })
    }
}

pub fn images(context: &Context, args: ImagesArgs) -> CliResult {
    let mut filters = parse_filters(&args.filter)?;
    if let Some(r) = &args.repository {
        filters.0.push(("reference".into(), r.clone()));
    }
    let format = match &args.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ if args.quiet => "{{.ID}}".to_string(),
        _ if args.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .to_string()
        }
        _ => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".to_string(),
    };
    let show_digests = args.digests || format.contains("{{.Digest}}");
    let format = Format::parse(&format).map_err(template_failure)?;
    let store = open_store(context)?;
    let listed = list::list(
        &store,
        &ListOptions {
            all: args.all,
            filters,
        },
    )
    .map_err(daemon)?;
    let now = Timestamp::now().secs;
    let mut rows = Vec::new();
    for image in &listed {
        for row in list::rows(image, show_digests) {
            rows.push(ImageRow {
                image,
                row,
                no_trunc: args.no_trunc,
                now,
                extra: None,
            });
        }
    }
    print(
        &format
            .render_rows(&rows, IMAGE_HEADERS)
            .map_err(template_failure)?,
    );
    Ok(0)
}

// ---- rmi / image rm ----

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

fn print_deletions(records: &[Deletion], out: &mut String) {
    for r in records {
        match r {
            Deletion::Untagged(s) => out.push_str(&format!("Untagged: {s}\n")),
            Deletion::Deleted(s) => out.push_str(&format!("Deleted: {s}\n")),
        }
    }
}

pub fn rmi(context: &Context, args: RmiArgs) -> CliResult {
    let store = open_store(context)?;
    let mut errors = Vec::new();
    let mut fatal = false;
    for image in &args.images {
        match remove::remove(&store, image, args.force, || {
            in_use::container_usage(store.root(), false).users
        }) {
            Ok(records) => {
                let mut out = String::new();
                print_deletions(&records, &mut out);
                print(&out);
            }
            Err(e) => {
                fatal |= !e.is_not_found();
                errors.push(format!("Error response from daemon: {e}"));
            }
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    let message = errors.join("\n");
    if !args.force || fatal {
        return Err(Failure { code: 1, message });
    }
    eprintln!("{message}");
    Ok(0)
}

// ---- image prune ----

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. 'until=<timestamp>')
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Docker's `PromptForConfirmation`.
fn confirm(message: &str) -> bool {
    print(&format!("{message} [y/N] "));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    let answer = answer.split_whitespace().next().unwrap_or("");
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

pub fn prune(context: &Context, args: PruneArgs) -> CliResult {
    let filters = parse_filters(&args.filter)?;
    let warning = if args.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !args.force && !confirm(warning) {
        print("Total reclaimed space: 0B\n");
        return Ok(0);
    }
    let store = open_store(context)?;
    let report = remove::prune(&store, args.all, &filters, || {
        in_use::container_usage(store.root(), false).users
    })
    .map_err(daemon)?;
    let mut out = String::new();
    if !report.deleted.is_empty() {
        out.push_str("Deleted Images:\n");
        for r in &report.deleted {
            match r {
                Deletion::Untagged(s) => out.push_str(&format!("untagged: {s}\n")),
                Deletion::Deleted(s) => out.push_str(&format!("deleted: {s}\n")),
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(report.reclaimed, 4)
    ));
    print(&out);
    Ok(0)
}

// ---- tag ----

#[derive(Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

pub fn tag(context: &Context, args: TagArgs) -> CliResult {
    let store = open_store(context)?;
    match remove::tag(&store, &args.source, &args.target) {
        Ok(()) => Ok(0),
        Err(e @ remove::RemoveError::BadTarget { .. }) => Err(client(e)),
        Err(e) => Err(daemon(e)),
    }
}

// ---- inspect ----

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `inspect` (generic: unknown names are "No such object") and `image inspect`.
pub fn inspect(context: &Context, args: InspectArgs, generic: bool) -> CliResult {
    let format = match args.format.as_deref() {
        Some(f) if !f.is_empty() => Some(Format::parse(f).map_err(template_failure)?),
        _ => None,
    };
    let store = open_store(context)?;
    let repos = index::load(&store).map_err(Failure::berth)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.images {
        match inspect::inspect(&store, &repos, name) {
            Ok(doc) => found.push(doc),
            Err(inspect::InspectError::Lookup(e)) => errors.push(if generic {
                format!("Error: No such object: {name}")
            } else {
                format!("Error response from daemon: no such image: {name}: {e}")
            }),
            Err(e) => errors.push(format!("Error response from daemon: {e}")),
        }
    }
    let found: Vec<Inspected> = found
        .into_iter()
        .map(|d| Inspected::Image(Box::new(d)))
        .collect();
    print_inspected(&found, format.as_ref())?;
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure {
            code: 1,
            message: errors.join("\n"),
        })
    }
}

/// Docker's generic `inspect`: each name is looked up as a container first, then as an image.
pub fn inspect_any(context: &Context, args: super::containers::InspectArgs) -> CliResult {
    let format = match args.format.as_deref() {
        Some(f) if !f.is_empty() => Some(Format::parse(f).map_err(template_failure)?),
        _ => None,
    };
    let containers = crate::container::store::ContainerStore::open(&context.root).ok();
    let store = open_store(context)?;
    let repos = index::load(&store).map_err(Failure::berth)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.containers {
        if let Some(dir) = containers.as_ref().and_then(|c| c.find(name).ok()) {
            match super::containers::inspect_json(&dir) {
                Ok(v) => found.push(Inspected::Container(v)),
                Err(e) => errors.push(format!("Error: {e}")),
            }
            continue;
        }
        match inspect::inspect(&store, &repos, name) {
            Ok(doc) => found.push(Inspected::Image(Box::new(doc))),
            Err(inspect::InspectError::Lookup(_)) => {
                errors.push(format!("Error: No such object: {name}"))
            }
            Err(e) => errors.push(format!("Error response from daemon: {e}")),
        }
    }
    print_inspected(&found, format.as_ref())?;
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure {
            code: 1,
            message: errors.join("\n"),
        })
    }
}

/// One `inspect` result: images keep Docker's field order when printed.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Inspected {
    Image(Box<inspect::ImageInspect>),
    Container(serde_json::Value),
}

fn print_inspected(found: &[Inspected], format: Option<&Format>) -> Result<(), Failure> {
    match format {
        None => print(&format!("{}\n", inspect::to_docker_json(&found))),
        Some(f) => {
            let mut out = String::new();
            for doc in found {
                let value = serde_json::to_value(doc).map_err(Failure::berth)?;
                match f.render_json(&value) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => {
                        print(&out);
                        return Err(template_failure(e));
                    }
                }
            }
            print(&out);
        }
    }
    Ok(())
}

// ---- history ----

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", action = ArgAction::Set, default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

pub fn history(context: &Context, args: HistoryArgs) -> CliResult {
    let format = match &args.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ if args.quiet => "{{.ID}}".to_string(),
        _ => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
    };
    let format = Format::parse(&format).map_err(template_failure)?;
    let store = open_store(context)?;
    let repos = index::load(&store).map_err(Failure::berth)?;
    let items = history::history(&store, &repos, &args.image).map_err(daemon)?;
    let now = Timestamp::now().secs;
    let rfc3339 = |t: &Timestamp| {
        Timestamp {
            secs: t.secs,
            nanos: 0,
        }
        .rfc3339_nano()
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = if h.id == "<missing>" {
                h.id.clone()
            } else {
                short_id(&h.id, args.no_trunc)
            };
            let created_by = h.created_by.replace('\t', " ");
            let created_by = if args.no_trunc {
                created_by
            } else {
                ellipsis(&created_by, 45)
            };
            template::from_json(&serde_json::json!({
                "ID": id,
                "CreatedSince": if args.human { time_ago(h.created.secs, now) } else { rfc3339(&h.created) },
                "CreatedAt": rfc3339(&h.created),
                "CreatedBy": created_by,
                "Size": if args.human { human_size(h.size, 3) } else { h.size.to_string() },
                "Comment": h.comment,
            }))
        })
        .collect();
    let since_header = if args.human { "CREATED" } else { "CREATED AT" };
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", since_header),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print(&format.render(&rows, &headers).map_err(template_failure)?);
    Ok(0)
}

// ---- system df ----

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn system_df(context: &Context, args: DfArgs) -> CliResult {
    let store = open_store(context)?;
    let containers = in_use::container_usage(store.root(), true);
    let du = usage::disk_usage(&store, &containers.users).map_err(daemon)?;
    let now = Timestamp::now().secs;
    if args.verbose {
        let format = Format::parse(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        )
        .map_err(template_failure)?;
        let mut rows = Vec::new();
        for u in &du.images {
            // Docker shows each image once, by its first tag.
            let row = list::rows(&u.image, false)
                .into_iter()
                .find(|r| r.tag != "<none>")
                .unwrap_or(list::Row {
                    repository: "<none>".into(),
                    tag: "<none>".into(),
                    digest: "<none>".into(),
                });
            rows.push(ImageRow {
                image: &u.image,
                row,
                no_trunc: false,
                now,
                extra: Some((u.shared_size, u.containers)),
            });
        }
        let mut out = String::from("Images space usage:\n\n");
        out.push_str(
            &format
                .render_rows(&rows, IMAGE_HEADERS)
                .map_err(template_failure)?,
        );
        out.push_str("\nContainers space usage:\n\n");
        let mut table = String::from(
            "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n",
        );
        for (record, state, size) in &containers.containers {
            let volumes = record.mounts.iter().filter(|m| m.kind == "volume").count();
            let created = crate::time::Timestamp::parse_rfc3339(&record.created)
                .map(|t| time_ago(t.secs, now))
                .unwrap_or_default();
            table.push_str(&format!(
                "{}\t{}\t{:?}\t{volumes}\t{}\t{created}\t{}\t{}\n",
                record.id.get(..12).unwrap_or(&record.id),
                record.image,
                ellipsis(&super::containers::command_text(record), 20),
                human_size(*size, 3),
                super::containers::status_text(state),
                record.name,
            ));
        }
        out.push_str(&template::tabwrite(&table));
        out.push_str("\nLocal Volumes space usage:\n\n");
        out.push_str(&template::tabwrite("VOLUME NAME\tLINKS\tSIZE\n"));
        out.push_str("\nBuild cache usage: 0B\n\n");
        out.push_str(&template::tabwrite(
            "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n",
        ));
        print(&out);
        return Ok(0);
    }
    let total = du.layers_size;
    let used: u64 = du
        .images
        .iter()
        .filter(|u| u.containers > 0)
        .map(|u| u.image.size.saturating_sub(u.shared_size))
        .sum();
    let reclaimable = total.saturating_sub(used);
    let reclaimable = match (reclaimable * 100).checked_div(total) {
        Some(percent) => format!("{} ({percent}%)", human_size(reclaimable, 4)),
        None => human_size(reclaimable, 4),
    };
    let active = du.images.iter().filter(|u| u.containers > 0).count();
    let row = |t: &str, n: usize, a: usize, size: String, rec: String| {
        template::from_json(&serde_json::json!({
            "Type": t, "TotalCount": n.to_string(), "Active": a.to_string(),
            "Size": size, "Reclaimable": rec,
        }))
    };
    let rows = vec![
        row(
            "Images",
            du.images.len(),
            active,
            human_size(total, 4),
            reclaimable,
        ),
        row(
            "Containers",
            containers.total,
            containers.running,
            human_size(containers.size, 4),
            match (containers.reclaimable * 100).checked_div(containers.size) {
                Some(p) => format!("{} ({p}%)", human_size(containers.reclaimable, 4)),
                None => human_size(containers.reclaimable, 4),
            },
        ),
        row("Local Volumes", 0, 0, "0B".into(), "0B".into()),
        row("Build Cache", 0, 0, "0B".into(), "0B".into()),
    ];
    let format = args
        .format
        .as_deref()
        .unwrap_or("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}");
    let format = Format::parse(format).map_err(template_failure)?;
    let headers = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print(&format.render(&rows, &headers).map_err(template_failure)?);
    Ok(0)
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

pub fn login(context: &Context, args: LoginArgs) -> CliResult {
    if args.password.is_some() && args.password_stdin {
        return Err(client(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if args.password_stdin && args.username.is_none() {
        return Err(client("Must provide --username with --password-stdin"));
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let key = login::server_key(args.server.as_deref());
    let mut password = args.password.clone();
    if args.password_stdin {
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
    let username = match args.username.clone() {
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
            return Err(client(
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
    };
    if username.is_empty() {
        return Err(client("Error: Non-null Username Required"));
    }
    let password = match password {
        Some(p) => p,
        None if interactive => prompt_password().unwrap_or_default(),
        None => {
            return Err(client(
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
    };
    if password.is_empty() {
        return Err(client("Error: Password Required"));
    }
    let credentials = Credentials { username, password };
    login::verify(&context.config, &key, &credentials).map_err(daemon)?;
    let path = login::store(&key, &credentials).map_err(Failure::berth)?;
    eprintln!(
        "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
        path.display()
    );
    print("Login Succeeded\n");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// SERVER
    pub server: Option<String>,
}

pub fn logout(_context: &Context, args: LogoutArgs) -> CliResult {
    let key = login::server_key(args.server.as_deref());
    let shown = if key == crate::image::registry::auth::DOCKER_HUB_AUTH_KEY {
        key.clone()
    } else {
        login::hostname(&key)
    };
    print(&format!("Removing login credentials for {shown}\n"));
    login::erase(&key).map_err(Failure::berth)?;
    Ok(0)
}
