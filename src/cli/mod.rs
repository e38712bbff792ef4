//! The command line: clap definitions, dispatch, and printing. No logic lives here; every
//! command calls into the module that owns its noun.

pub mod container;
pub mod format;
pub mod image;
pub mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_DATA_ROOT};

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
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// berth's configuration file (Docker daemon.json keys)
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download an image from a registry
    Pull(image::PullArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(container::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(container::CreateFlags),
    /// Start one or more stopped containers
    Start(container::StartArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(container::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(container::CreateFlags),
    /// Start one or more stopped containers
    Start(container::StartArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Download an image from a registry
    Pull(image::PullArgs),
}

/// What every command needs: the configuration and where the store lives.
pub struct Context {
    pub config: Config,
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
        Ok(Context { config, root })
    }
}

pub fn run(cli: Cli) -> CliResult {
    let context = Context::new(&cli)?;
    match cli.command {
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            image::pull(&context, args)
        }
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => {
            container::run(&context, args)
        }
        Command::Create(flags) | Command::Container(ContainerCommand::Create(flags)) => {
            container::create(&context, flags)
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            container::start(&context, args)
        }
    }
}
