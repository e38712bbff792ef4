//! The command line: clap definitions, dispatch, and printing. No logic lives here; every
//! command parses its flags, calls into the module that owns its noun, and prints.
//!
//! A verb is written once: a variant of one of the `verbs!` enums below, whose arguments type
//! carries its [`Verb::run`] in the file of its command group:
//!
//! | file | verbs |
//! | --- | --- |
//! | `run.rs` | `run`, `create`, `start` |
//! | `containers.rs` | `ps`/`container ls`, `logs`, `stop`, `restart`, `kill`, `wait`, `pause`, `unpause`, `rename`, `top`, `attach`, `exec`, `rm`, `container prune` |
//! | `inspect.rs` | `inspect`, `container inspect`, `image inspect` |
//! | `network.rs` | `port` |
//! | `transfer.rs` | `export`, `import`, `diff`, `commit`, `save`, `load` |
//! | `images.rs` | `images`/`image ls`, `rmi`/`image rm`, `image prune`, `tag`, `history` |
//! | `registry.rs` | `pull`, `push`, `search`, `login`, `logout` |
//! | `system.rs` | `system df` |

pub mod containers;
pub mod format;
pub mod images;
pub mod inspect;
pub mod network;
pub mod progress;
pub mod registry;
pub mod run;
pub mod system;
pub mod template;
pub mod transfer;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_DATA_ROOT};
use crate::container::store::ContainerStore;
use crate::image::store::Store;

/// An error the binary prints as one line on stderr before exiting with `code`.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// Berth itself failed: Docker's exit code 125.
    pub fn berth(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: 125,
            message: error.to_string(),
        }
    }

    /// What Docker's daemon refuses: "Error response from daemon: …", exit 1.
    pub fn daemon(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: format!("Error response from daemon: {error}"),
        }
    }

    /// What Docker's client refuses itself (bad flags, a terminal as output): the message
    /// alone, exit 1.
    pub fn client(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: error.to_string(),
        }
    }
}

pub type CliResult = Result<i32, Failure>;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A daemonless, Docker-compatible container runtime",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Root of the image and container store (default /var/lib/berth, or `data-root`)
    #[arg(long, value_name = "DIR", env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
    /// berth's configuration file (Docker daemon.json keys)
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// A command: its arguments, and what it does with them.
pub trait Verb {
    fn run(self, context: &Context) -> CliResult;
}

/// A clap subcommand enum whose dispatch is generated: each variant's arguments run
/// themselves, so a verb appears once, as its variant.
macro_rules! verbs {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$variant_meta:meta])* $variant:ident($args:ty),)*
    }) => {
        #[derive(Subcommand, Debug)]
        #[command(defer = true)]
        $(#[$meta])*
        pub enum $name {
            $($(#[$variant_meta])* $variant($args),)*
        }

        impl Verb for $name {
            fn run(self, context: &Context) -> CliResult {
                match self {
                    $($name::$variant(args) => args.run(context),)*
                }
            }
        }
    };
}

verbs! {
    pub enum Command {
        #[command(flatten)]
        ContainerShortcuts(ContainerVerbs),
        /// List containers
        Ps(containers::PsArgs),
        /// Return low-level information on containers and images
        Inspect(inspect::InspectArgs),
        /// Manage containers
        #[command(subcommand)]
        Container(ContainerCommand),
        #[command(flatten)]
        ImageShortcuts(ImageVerbs),
        /// List images
        Images(images::ImagesArgs),
        /// Remove one or more images
        Rmi(images::RmiArgs),
        /// Manage images
        #[command(subcommand)]
        Image(ImageCommand),
        /// Search for images (Docker Hub, or a registry's catalog)
        Search(registry::SearchArgs),
        /// Log in to a registry
        Login(registry::LoginArgs),
        /// Log out from a registry
        Logout(registry::LogoutArgs),
        /// Manage berth
        #[command(subcommand)]
        System(SystemCommand),
    }
}

verbs! {
    /// The container verbs Docker has both at the top level and under `container`.
    pub enum ContainerVerbs {
        /// Create and run a new container from an image
        #[command(disable_help_flag = true)]
        Run(run::RunArgs),
        /// Create a new container
        #[command(disable_help_flag = true)]
        Create(run::CreateFlags),
        /// Start one or more stopped containers
        Start(run::StartArgs),
        /// Fetch the logs of a container
        Logs(containers::LogsArgs),
        /// Stop one or more running containers
        Stop(containers::StopArgs),
        /// Restart one or more containers
        Restart(containers::RestartArgs),
        /// Kill one or more running containers
        Kill(containers::KillArgs),
        /// Block until one or more containers stop, then print their exit codes
        Wait(containers::WaitArgs),
        /// Pause all processes within one or more containers
        Pause(containers::PauseArgs),
        /// Unpause all processes within one or more containers
        Unpause(containers::UnpauseArgs),
        /// Rename a container
        Rename(containers::RenameArgs),
        /// Display the running processes of a container
        Top(containers::TopArgs),
        /// Update configuration of one or more containers
        Update(containers::UpdateArgs),
        /// Attach local standard input, output, and error streams to a running container
        Attach(containers::AttachArgs),
        /// Execute a command in a running container
        Exec(containers::ExecArgs),
        /// Remove one or more containers
        Rm(containers::RmArgs),
        /// List port mappings or a specific mapping for the container
        Port(network::PortArgs),
        /// Export a container's filesystem as a tar archive
        Export(transfer::ExportArgs),
        /// Inspect changes to files or directories on a container's filesystem
        Diff(transfer::DiffArgs),
        /// Create a new image from a container's changes
        Commit(transfer::CommitArgs),
    }
}

verbs! {
    /// `container …`: the shared container verbs and those only this group has.
    // One value per process: the size of `run`'s flags costs nothing worth a box.
    #[allow(clippy::large_enum_variant)]
    pub enum ContainerCommand {
        #[command(flatten)]
        Shared(ContainerVerbs),
        /// List containers
        #[command(alias = "list", alias = "ps")]
        Ls(containers::PsArgs),
        /// Remove all stopped containers
        Prune(containers::PruneArgs),
        /// Display detailed information on one or more containers
        Inspect(inspect::ContainerInspectArgs),
    }
}

verbs! {
    /// The image verbs Docker has both at the top level and under `image`.
    pub enum ImageVerbs {
        /// Download an image from a registry
        Pull(registry::PullArgs),
        /// Upload an image to a registry
        Push(registry::PushArgs),
        /// Import the contents from a tarball to create a filesystem image
        Import(transfer::ImportArgs),
        /// Save one or more images to a tar archive (streamed to STDOUT by default)
        Save(transfer::SaveArgs),
        /// Load an image from a tar archive or STDIN
        Load(transfer::LoadArgs),
        /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
        Tag(images::TagArgs),
        /// Show the history of an image
        History(images::HistoryArgs),
    }
}

verbs! {
    /// `image …`: the shared image verbs and those only this group has.
    pub enum ImageCommand {
        #[command(flatten)]
        Shared(ImageVerbs),
        /// List images
        #[command(visible_alias = "list")]
        Ls(images::ImagesArgs),
        /// Remove one or more images
        #[command(visible_alias = "remove")]
        Rm(images::RmiArgs),
        /// Remove unused images
        Prune(images::PruneArgs),
        /// Display detailed information on one or more images
        Inspect(inspect::ImageInspectArgs),
    }
}

verbs! {
    /// `system …`.
    pub enum SystemCommand {
        /// Show berth disk usage
        Df(system::DfArgs),
    }
}

/// What every command needs: the configuration and where the store lives.
pub struct Context {
    pub config: Config,
    /// Where `config` was read from (named in messages about its values).
    pub config_path: PathBuf,
    pub root: PathBuf,
}

impl Context {
    fn new(cli: &Cli) -> Result<Context, Failure> {
        let config = Config::load(&cli.config).map_err(Failure::berth)?;
        let root = cli
            .root
            .clone()
            .or_else(|| config.data_root.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT));
        Ok(Context {
            config,
            config_path: cli.config.clone(),
            root,
        })
    }

    /// The image store.
    fn images(&self) -> Result<Store, Failure> {
        Store::open(&self.root).map_err(Failure::berth)
    }

    /// The container store. (What a creation that died half-way left is in the store's
    /// tmp/, swept by every command: see `run` below.)
    fn containers(&self) -> Result<ContainerStore, Failure> {
        ContainerStore::open(&self.root).map_err(Failure::berth)
    }
}

/// Writes `out` to stdout at once and flushes it: the output of a command that ends by
/// printing a block.
fn print(out: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

pub fn run(cli: Cli) -> CliResult {
    let context = Context::new(&cli)?;
    // Networks of containers that died without their monitor (it was killed) are released
    // by whichever berth command runs next.
    crate::network::sweep();
    // So is the work in the store's tmp/ that killed commands left (a commit's layer, a
    // load's archive): what a running command is writing there stays. Not by `run` and
    // `exec`, whose start-up is kept short: any other command sweeps it.
    if !cli.command.is_run_or_exec() {
        crate::image::store::sweep_work(&context.root);
    }
    cli.command.run(&context)
}

impl Command {
    fn is_run_or_exec(&self) -> bool {
        let verb = match self {
            Command::ContainerShortcuts(verb) => verb,
            Command::Container(ContainerCommand::Shared(verb)) => verb,
            _ => return false,
        };
        matches!(verb, ContainerVerbs::Run(_) | ContainerVerbs::Exec(_))
    }
}
