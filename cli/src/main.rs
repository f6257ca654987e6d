//! `cairn`, the command-line front end.
//!
//! The commands here open a repository directly (`--repo REPO` or `CAIRN_REPO`) and run
//! the engine in this process. Exit codes: 0 success, 1 the operation failed or found a
//! problem (damage in `verify`), 2 a usage or configuration error (`verify`: any error),
//! 130 interrupted.

mod commands;
mod failure;
mod human_units;
mod interrupt;
mod password;
mod progress;
mod repo_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{Invocation, Status};

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "A backup repository you can mount",
    after_help = "Passwords come from --password-file, CAIRN_PASSWORD, or a prompt when stdin is \
                  a terminal.\nThe local catalog (a rebuildable cache) lives under \
                  CAIRN_CACHE_DIR, else $XDG_CACHE_HOME/cairn, else ~/.cache/cairn.\n\
                  Logging: RUST_LOG (default: warn)."
)]
struct Cli {
    #[command(flatten)]
    global: repo_args::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a repository.
    Init(commands::init::InitArgs),
    /// Back up paths as a new point of an instance.
    Snapshot(commands::snapshot::SnapshotArgs),
    /// Restore a point into a new directory or over the original paths.
    Restore(commands::restore::RestoreArgs),
    /// Check the repository; exit 1 and name what is damaged if anything is.
    Verify(commands::verify::VerifyArgs),
    /// List backup points.
    Points(commands::points::PointsArgs),
    /// Manage the local catalog (a cache of the repository's index and points).
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // The engine reports the conditions it survives through `Progress::warn`, which the
    // commands print; its own log lines would repeat them.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,cairn::engine=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Before any thread starts, so that every thread inherits the blocked signals.
    let interrupts = interrupt::Interrupts::install();
    let inv = Invocation {
        global: &cli.global,
        interrupts: &interrupts,
    };
    let is_verify = matches!(cli.command, Command::Verify(_));
    let result = match &cli.command {
        Command::Init(args) => commands::init::run(&inv, args),
        Command::Snapshot(args) => commands::snapshot::run(&inv, args),
        Command::Restore(args) => commands::restore::run(&inv, args),
        Command::Verify(args) => commands::verify::run(&inv, args),
        Command::Points(args) => commands::points::run(&inv, args),
        Command::Catalog(cmd) => commands::catalog::run(&inv, cmd),
    };
    match result {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::ProblemFound) => ExitCode::from(1),
        Err(err) => failure::report(&err, is_verify),
    }
}
