//! Local image commands: `images`/`image ls`, `rmi`/`image rm`, `image prune`, `tag`,
//! `history`. Logic lives in `image/`; this file parses flags and prints Docker's output.

use std::io::BufRead;

use clap::{ArgAction, Args};
use gtmpl::Value;

use super::format::{ellipsis, human_size, time_ago};
use super::template::{self, Format};
use super::{CliResult, Context, Failure, Verb, print};
use crate::container::in_use;
use crate::image::history;
use crate::image::index;
use crate::image::list::{self, Filters, ListOptions, ListedImage};
use crate::image::remove::{self, Deletion};
use crate::time::Timestamp;

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

pub(super) const IMAGE_HEADERS: &[(&str, &str)] = &[
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
pub(super) struct ImageRow<'a> {
    pub(super) image: &'a ListedImage,
    pub(super) row: list::Row,
    pub(super) no_trunc: bool,
    pub(super) now: i64,
    /// Shared size and container count (`system df -v`); "N/A" in `images`.
    pub(super) extra: Option<(u64, usize)>,
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

impl Verb for ImagesArgs {
    fn run(self, context: &Context) -> CliResult {
        let mut filters = parse_filters(&self.filter)?;
        if let Some(r) = &self.repository {
            filters.0.push(("reference".into(), r.clone()));
        }
        let format = match &self.format {
        Some(f) if !f.is_empty() => f.clone(),
        _ if self.quiet => "{{.ID}}".to_string(),
        _ if self.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .to_string()
        }
        _ => "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".to_string(),
    };
        let show_digests = self.digests || format.contains("{{.Digest}}");
        let format = Format::parse(&format).map_err(Failure::berth)?;
        let store = context.images()?;
        let listed = list::list(
            &store,
            &ListOptions {
                all: self.all,
                filters,
            },
        )
        .map_err(Failure::daemon)?;
        let now = Timestamp::now().secs;
        let mut rows = Vec::new();
        for image in &listed {
            for row in list::rows(image, show_digests) {
                rows.push(ImageRow {
                    image,
                    row,
                    no_trunc: self.no_trunc,
                    now,
                    extra: None,
                });
            }
        }
        print(
            &format
                .render_rows(&rows, IMAGE_HEADERS)
                .map_err(Failure::berth)?,
        );
        Ok(0)
    }
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

impl Verb for RmiArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.images()?;
        let mut errors = Vec::new();
        let mut fatal = false;
        for image in &self.images {
            match remove::remove(&store, image, self.force, !self.no_prune, || {
                in_use::image_users(store.root()).map_err(|e| e.to_string())
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
        if !self.force || fatal {
            return Err(Failure { code: 1, message });
        }
        eprintln!("{message}");
        Ok(0)
    }
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

impl Verb for PruneArgs {
    fn run(self, context: &Context) -> CliResult {
        let filters = parse_filters(&self.filter)?;
        let warning = if self.all {
            "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
        } else {
            "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
        };
        if !self.force && !confirm(warning) {
            print("Total reclaimed space: 0B\n");
            return Ok(0);
        }
        let store = context.images()?;
        let report = remove::prune(&store, self.all, &filters, || {
            in_use::image_users(store.root()).map_err(|e| e.to_string())
        })
        .map_err(Failure::daemon)?;
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
}

// ---- tag ----

#[derive(Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

impl Verb for TagArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.images()?;
        match remove::tag(&store, &self.source, &self.target) {
            Ok(()) => Ok(0),
            Err(e @ remove::RemoveError::BadTarget { .. }) => Err(Failure::client(e)),
            Err(e) => Err(Failure::daemon(e)),
        }
    }
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

impl Verb for HistoryArgs {
    fn run(self, context: &Context) -> CliResult {
        let format = match &self.format {
            Some(f) if !f.is_empty() => f.clone(),
            _ if self.quiet => "{{.ID}}".to_string(),
            _ => "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
                .to_string(),
        };
        let format = Format::parse(&format).map_err(Failure::berth)?;
        let store = context.images()?;
        let repos = index::load(&store).map_err(Failure::berth)?;
        let items = history::history(&store, &repos, &self.image).map_err(Failure::daemon)?;
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
                short_id(&h.id, self.no_trunc)
            };
            let created_by = h.created_by.replace('\t', " ");
            let created_by = if self.no_trunc {
                created_by
            } else {
                ellipsis(&created_by, 45)
            };
            template::from_json(&serde_json::json!({
                "ID": id,
                "CreatedSince": if self.human { time_ago(h.created.secs, now) } else { rfc3339(&h.created) },
                "CreatedAt": rfc3339(&h.created),
                "CreatedBy": created_by,
                "Size": if self.human { human_size(h.size, 3) } else { h.size.to_string() },
                "Comment": h.comment,
            }))
        })
        .collect();
        let since_header = if self.human { "CREATED" } else { "CREATED AT" };
        let headers = [
            ("ID", "IMAGE"),
            ("CreatedSince", since_header),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ];
        print(&format.render(&rows, &headers).map_err(Failure::berth)?);
        Ok(0)
    }
}
