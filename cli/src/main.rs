//! `cairn`, the command-line front end.
//!
//! `cairn mount REPO DIR` serves a repository as a filesystem; most other commands talk
//! to such a mount through its control files (`--mount DIR` or `CAIRN_MOUNT`), and
//! `snapshot`, `restore`, `verify`, `check`, `diff`, `forget`, `prune`, `repair`, `export`,
//! `points` and `events` can also open
//! a repository directly (`--repo REPO` or `CAIRN_REPO`) and run the engine in this
//! process. Exit codes: 0 success, 1 the operation (or job) failed or found a problem
//! (damage in `verify`), 2 a usage or configuration error or a refused request (direct
//! `verify`, `check` and `diff`: any error; `check` and `diff` exit 1 for differences), 3 a `restore --skip-damaged` that skipped damaged files, 130
//! interrupted.

/// `println!` for the whole crate (defined before the modules, it shadows std's): a
/// closed stdout ends the output quietly instead of panicking (see `output`).
macro_rules! println {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

mod client;
mod commands;
mod failure;
mod human_units;
mod interrupt;
mod mounts;
mod output;
mod password;
mod progress;
mod repo_args;
mod stderr_note;
mod time_args;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::{Invocation, Status};

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "A backup repository you can mount",
    after_help = "Passwords come from --password-file, CAIRN_PASSWORD, or a prompt when stdin is \
                  a terminal.\nThe local catalog (a cache rebuilt from the repository, and the job \
                  history and events, which are kept) lives under CAIRN_CACHE_DIR, else \
                  $XDG_CACHE_HOME/cairn, else ~/.cache/cairn. Beside it, blob-cache/ keeps the \
                  trees (and what a mount read) of a remote repository, at most \
                  CAIRN_BLOB_CACHE_MB MiB (default 1024, a mount's at least 4x its --cache-size; \
                  0: none).\n\
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
    /// Serve a repository as a filesystem at DIR (in the foreground, or --background).
    Mount(commands::mount::MountArgs),
    /// Detach the cairn mount at DIR (its daemon then exits).
    Umount(commands::mount::UmountArgs),
    /// Add, list or remove the instances of a mount.
    #[command(subcommand)]
    Instance(commands::instance::InstanceCommand),
    /// Scheduled points and their retention: create, bind, list, ... policies.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Take a new point of an instance (through a mount, or --repo with --path).
    Snapshot(commands::snapshot::SnapshotArgs),
    /// Restore a point into a new directory or over the original paths; with
    /// --skip-damaged, exit 3 when damaged files were skipped.
    Restore(commands::restore::RestoreArgs),
    /// Check the repository; exit 1 and name what is damaged if anything is.
    Verify(commands::verify::VerifyArgs),
    /// Write a point as a tar stream to stdout (or --output FILE); `--format tar.zst`.
    Export(commands::export::ExportArgs),
    /// Compare a point with the live data (or --against DIR): exit 0 same, 1
    /// different, 2 an error.
    Check(commands::check::CheckArgs),
    /// Compare two points of an instance: exit 0 same, 1 different, 2 an error.
    Diff(commands::check::DiffArgs),
    /// Copy points (or a whole repository) into another repository, with their history;
    /// verifies the copies.
    Copy(commands::copy::CopyArgs),
    /// Remove points (manual ones only with --manual); `prune` then reclaims their data.
    Forget(commands::forget::ForgetArgs),
    /// Remove data no point references (two phases: plan now, delete after a grace
    /// period in a later prune).
    Prune(commands::prune::PruneArgs),
    /// Rebuild lost index segments, move readable blobs out of damaged packs and remove
    /// them, mark points that still lack data damaged; exit 1 when some remain damaged.
    Repair(commands::repair::RepairArgs),
    /// Archive an instance's log files now, or push one (PostgreSQL's archive_command).
    #[command(subcommand)]
    Log(commands::log::LogCommand),
    /// List backup points.
    Points(commands::points::PointsArgs),
    /// List a mount's jobs, show one, or delete finished ones (`jobs delete ID`).
    Jobs(commands::jobs::JobsArgs),
    /// Show the audit trail (through a mount, or --repo from this machine's catalog).
    Events(commands::events::EventsArgs),
    /// Cancel a queued or running job of a mount.
    Cancel(commands::jobs::CancelArgs),
    /// Manage the local catalog (a cache of the repository's index and points).
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Print the completion script for SHELL (bash, zsh, fish, elvish, powershell) to
    /// stdout.
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff) of cairn, or of COMMAND (e.g. `cairn man snapshot`), to
    /// stdout.
    Man(commands::man::ManArgs),
}

// The mount daemon's watcher process, read apart from `Cli` (when the first argument is
// `commands::mount::WATCHER`), so that no help, completion script or man page offers it.
#[derive(Parser)]
#[command(
    bin_name = "cairn __mount-watcher",
    about = "Internal: detaches DIR when the mount daemon whose pipe is on stdin dies."
)]
struct WatcherCli {
    #[command(flatten)]
    args: commands::mount::WatcherArgs,
}

/// The watcher outlives Ctrl-C and SIGTERM aimed at its daemon: it only acts when the
/// daemon is gone.
fn ignore_signals() {
    for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: setting a signal's disposition to SIG_IGN.
        unsafe { libc::signal(s, libc::SIG_IGN) };
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    // The engine reports the conditions it survives through `Progress::warn`, which the
    // commands print; its own log lines would repeat them.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,cairn::engine=error"));
    // A log line that cannot be written (a full disk under the daemon's log) is dropped,
    // never reported on stderr (which is that same log).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    // Two malloc arenas instead of one per thread: the engine's many readers would
    // otherwise each keep freed buffers, and peak RSS would grow with the thread count.
    // Buffers of 1 MiB and more (chunks, sealed blobs, packs) are mapped on their own and
    // unmapped when freed: glibc's sliding threshold would otherwise serve them from the
    // arenas after the first pack, which keep the memory of the busiest moment for good.
    // SAFETY: mallopt before any other thread exists; it only tunes the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|word| word == commands::mount::WATCHER)
    {
        let watcher = WatcherCli::parse_from(std::env::args_os().skip(1));
        init_tracing();
        ignore_signals();
        return match commands::mount::watch(&watcher.args) {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => failure::report(&err, false),
        };
    }
    let cli = Cli::parse();
    init_tracing();
    // Before any thread starts, so that every thread inherits the blocked signals.
    let interrupts = interrupt::Interrupts::install();
    let inv = Invocation {
        global: &cli.global,
        interrupts: &interrupts,
    };
    // Direct `verify` keeps exit code 1 for "damage found"; any error is 2.
    let is_verify = matches!(&cli.command, Command::Verify(a) if a.target.is_direct())
        || matches!(&cli.command, Command::Check(_) | Command::Diff(_));
    let result = match &cli.command {
        Command::Init(args) => commands::init::run(&inv, args),
        Command::Mount(args) => commands::mount::run(&inv, args),
        Command::Umount(args) => commands::mount::umount(&inv, args),
        Command::Instance(cmd) => commands::instance::run(&inv, cmd),
        Command::Policy(cmd) => commands::policy::run(&inv, cmd),
        Command::Jobs(args) => commands::jobs::run(&inv, args),
        Command::Events(args) => commands::events::run(&inv, args),
        Command::Cancel(args) => commands::jobs::cancel(&inv, args),
        Command::Snapshot(args) => commands::snapshot::run(&inv, args),
        Command::Restore(args) => commands::restore::run(&inv, args),
        Command::Verify(args) => commands::verify::run(&inv, args),
        Command::Export(args) => commands::export::run(&inv, args),
        Command::Check(args) => commands::check::check(&inv, args),
        Command::Diff(args) => commands::check::diff(&inv, args),
        Command::Points(args) => commands::points::run(&inv, args),
        Command::Log(cmd) => commands::log::run(&inv, cmd),
        Command::Forget(args) => commands::forget::run(&inv, args),
        Command::Copy(args) => commands::copy::run(&inv, args),
        Command::Prune(args) => commands::prune::run(&inv, args),
        Command::Repair(args) => commands::repair::run(&inv, args),
        Command::Catalog(cmd) => commands::catalog::run(&inv, cmd),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::man::run(args, Cli::command()),
    };
    // A closed stdout is not an error (the reader had enough); a failing one is.
    let output_failed = output::finish()
        .map(|e| eprintln!("cairn: cannot write the output: {e}"))
        .is_some();
    match result {
        Ok(Status::Success) if output_failed => ExitCode::from(2),
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::ProblemFound) => ExitCode::from(1),
        Ok(Status::SkippedDamaged) => ExitCode::from(3),
        Err(err) => failure::report(&err, is_verify),
    }
}
