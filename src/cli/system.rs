//! `system df`: disk usage of images and containers, as Docker prints it.

use clap::Args;

use super::containers::{command_text, status_text};
use super::format::{ellipsis, human_size, time_ago};
use super::images::{IMAGE_HEADERS, ImageRow};
use super::template::{self, Format};
use super::{CliResult, Context, Failure, Verb, print};
use crate::container::in_use;
use crate::image::list;
use crate::image::usage;
use crate::time::Timestamp;

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Pretty-print images using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
}

impl Verb for DfArgs {
    fn run(self, context: &Context) -> CliResult {
        let store = context.images()?;
        let containers = in_use::container_usage(store.root(), true);
        let du = usage::disk_usage(&store, &containers.users).map_err(Failure::daemon)?;
        let now = Timestamp::now().secs;
        if self.verbose {
            let format = Format::parse(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        )
        .map_err(Failure::berth)?;
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
                    .map_err(Failure::berth)?,
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
                    ellipsis(&command_text(&record.path, &record.args), 20),
                    human_size(*size, 3),
                    status_text(state),
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
        let format = self.format.as_deref().unwrap_or(
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        );
        let format = Format::parse(format).map_err(Failure::berth)?;
        let headers = [
            ("Type", "TYPE"),
            ("TotalCount", "TOTAL"),
            ("Active", "ACTIVE"),
            ("Size", "SIZE"),
            ("Reclaimable", "RECLAIMABLE"),
        ];
        print(&format.render(&rows, &headers).map_err(Failure::berth)?);
        Ok(0)
    }
}
