//! Registry commands: `pull`.

use std::io::IsTerminal;

use clap::Args;

use super::progress::PullPrinter;
use super::{CliResult, Context, Failure};
use crate::image::manifest::Platform;
use crate::image::pull::{self, PullOptions, PullStatus};
use crate::image::reference::Reference;
use crate::image::registry::Registry;
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

pub fn pull(context: &Context, args: PullArgs) -> CliResult {
    let named = Reference::parse_named(&args.name).map_err(Failure::berth)?;
    if args.all_tags && (named.tag.is_some() || named.digest.is_some()) {
        return Err(Failure::berth("tag can't be used with --all-tags/-a"));
    }
    let platform = Platform::parse_flag(args.platform.as_deref()).map_err(Failure::berth)?;
    let printer = PullPrinter::new(args.quiet, std::io::stdout().is_terminal());
    let store = Store::open(&context.root).map_err(Failure::berth)?;
    let registry = Registry::new(&named.domain, &context.config);
    let options = PullOptions { platform };
    let on_event = |event| printer.event(event);

    let references = if args.all_tags {
        let tags = pull::list_tags(&registry, &named).map_err(Failure::berth)?;
        tags.iter().map(|t| named.with_tag(t)).collect()
    } else {
        if named.tag.is_none() && named.digest.is_none() {
            printer.line("Using default tag: latest");
        }
        vec![Reference::parse(&args.name).map_err(Failure::berth)?]
    };
    let mut downloaded = false;
    let mut last = None;
    for reference in &references {
        let pulled = pull::pull(&store, &registry, reference, &options, &on_event);
        let pulled = match pulled {
            Ok(p) => p,
            Err(e) => {
                printer.finish();
                return Err(Failure::berth(e));
            }
        };
        downloaded |= pulled.status == PullStatus::Downloaded;
        last = Some(pulled);
    }
    printer.finish();
    let Some(last) = last else {
        return Err(Failure::berth(format!(
            "no tags found for {}",
            named.familiar_repository()
        )));
    };
    let (shown, canonical) = if args.all_tags {
        (named.familiar_repository(), named.repository())
    } else {
        let r = &references[0];
        (r.familiar(), r.to_string())
    };
    if !args.all_tags {
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
