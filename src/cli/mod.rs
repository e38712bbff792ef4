//! The command line: clap definitions, dispatch, and printing. No logic lives here; every
//! command calls into the module that owns its noun.

pub mod containers;
pub mod format;
pub mod images;
pub mod network;
pub mod progress;
pub mod registry;
pub mod run;
pub mod template;
pub mod transfer;

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
    #[arg(long, value_name = "DIR", env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
    /// berth's configuration file (Docker daemon.json keys)
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateFlags),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// List containers
    Ps(containers::PsArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::NamesArgs),
    /// Pause all processes within one or more containers
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(containers::NamesArgs),
    /// Rename a container
    Rename(containers::RenameArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(containers::AttachArgs),
    /// Execute a command in a running container
    Exec(containers::ExecArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// Return low-level information on containers and images
    Inspect(containers::InspectArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(transfer::DiffArgs),
    /// Create a new image from a container's changes
    Commit(transfer::CommitArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// Search for images (Docker Hub, or a registry's catalog)
    Search(transfer::SearchArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Log in to a registry
    Login(images::LoginArgs),
    /// Log out from a registry
    Logout(images::LogoutArgs),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show berth disk usage
    Df(images::DfArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateFlags),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(containers::PsArgs),
    /// Fetch the logs of a container
    Logs(containers::LogsArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Restart one or more containers
    Restart(containers::StopArgs),
    /// Kill one or more running containers
    Kill(containers::KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(containers::NamesArgs),
    /// Pause all processes within one or more containers
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(containers::NamesArgs),
    /// Rename a container
    Rename(containers::RenameArgs),
    /// Display the running processes of a container
    Top(containers::TopArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(containers::AttachArgs),
    /// Execute a command in a running container
    Exec(containers::ExecArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// Remove all stopped containers
    Prune(containers::PruneArgs),
    /// Display detailed information on one or more containers
    Inspect(containers::InspectArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Export a container's filesystem as a tar archive
    Export(transfer::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(transfer::DiffArgs),
    /// Create a new image from a container's changes
    Commit(transfer::CommitArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(transfer::ImportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(transfer::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(transfer::LoadArgs),
    /// Upload an image to a registry
    Push(transfer::PushArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(images::RmiArgs),
    /// Remove unused images
    Prune(images::PruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(images::TagArgs),
    /// Display detailed information on one or more images
    Inspect(images::InspectArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
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
    // Networks of containers that died without their monitor (it was killed) are released
    // by whichever berth command runs next.
    crate::network::sweep();
    match cli.command {
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            registry::pull(&context, args)
        }
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => {
            run::run(&context, args)
        }
        Command::Create(flags) | Command::Container(ContainerCommand::Create(flags)) => {
            run::create(&context, flags)
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            run::start(&context, args)
        }
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            containers::ps(&context, args)
        }
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            containers::logs(&context, args)
        }
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            containers::stop(&context, args)
        }
        Command::Restart(args) | Command::Container(ContainerCommand::Restart(args)) => {
            containers::restart(&context, args)
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            containers::kill(&context, args)
        }
        Command::Wait(args) | Command::Container(ContainerCommand::Wait(args)) => {
            containers::wait(&context, args)
        }
        Command::Pause(args) | Command::Container(ContainerCommand::Pause(args)) => {
            containers::pause(&context, args, true)
        }
        Command::Unpause(args) | Command::Container(ContainerCommand::Unpause(args)) => {
            containers::pause(&context, args, false)
        }
        Command::Rename(args) | Command::Container(ContainerCommand::Rename(args)) => {
            containers::rename(&context, args)
        }
        Command::Top(args) | Command::Container(ContainerCommand::Top(args)) => {
            containers::top(&context, args)
        }
        Command::Attach(args) | Command::Container(ContainerCommand::Attach(args)) => {
            containers::attach(&context, args)
        }
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => {
            containers::exec(&context, args)
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => {
            containers::rm(&context, args)
        }
        Command::Container(ContainerCommand::Prune(args)) => containers::prune(&context, args),
        Command::Container(ContainerCommand::Inspect(args)) => containers::inspect(&context, args),
        // Docker's `inspect` looks for a container, then an image.
        Command::Inspect(args) => images::inspect_any(&context, args),
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            images::images(&context, args)
        }
        Command::Export(args) | Command::Container(ContainerCommand::Export(args)) => {
            transfer::export(&context, args)
        }
        Command::Diff(args) | Command::Container(ContainerCommand::Diff(args)) => {
            transfer::diff(&context, args)
        }
        Command::Commit(args) | Command::Container(ContainerCommand::Commit(args)) => {
            transfer::commit(&context, args)
        }
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            transfer::import(&context, args)
        }
        Command::Save(args) | Command::Image(ImageCommand::Save(args)) => {
            transfer::save(&context, args)
        }
        Command::Load(args) | Command::Image(ImageCommand::Load(args)) => {
            transfer::load(&context, args)
        }
        Command::Push(args) | Command::Image(ImageCommand::Push(args)) => {
            transfer::push(&context, args)
        }
        Command::Search(args) => transfer::search(&context, args),
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => images::rmi(&context, args),
        Command::Image(ImageCommand::Prune(args)) => images::prune(&context, args),
        Command::Tag(args) | Command::Image(ImageCommand::Tag(args)) => images::tag(&context, args),
        Command::Image(ImageCommand::Inspect(args)) => images::inspect(&context, args, false),
        Command::History(args) | Command::Image(ImageCommand::History(args)) => {
            images::history(&context, args)
        }
        Command::Login(args) => images::login(&context, args),
        Command::Logout(args) => images::logout(&context, args),
        Command::System(SystemCommand::Df(args)) => images::system_df(&context, args),
        Command::Port(args) | Command::Container(ContainerCommand::Port(args)) => {
            network::port(&context, args)
        }
    }
}
