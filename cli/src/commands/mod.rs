//! One module per command (group). Each has an `Args` struct (clap derive) and a `run`.

pub mod catalog;
pub mod check;
pub mod completions;
pub mod copy;
pub mod events;
pub mod export;
pub mod forget;
pub mod init;
pub mod instance;
pub mod jobs;
pub mod log;
pub mod man;
pub mod mount;
pub mod points;
pub mod policy;
pub mod prune;
pub mod repair;
pub mod restorable;
pub mod restore;
pub mod restore_at;
pub mod restore_stdout;
pub mod snapshot;
pub mod verify;

use anyhow::Result;

use crate::interrupt::Interrupts;
use crate::repo_args::GlobalArgs;

/// What every command gets besides its own arguments.
pub struct Invocation<'a> {
    pub global: &'a GlobalArgs,
    pub interrupts: &'a Interrupts,
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    /// The operation ran and found a problem (exit code 1), e.g. damage in `verify`.
    ProblemFound,
    /// A `restore --skip-damaged` restored everything intact but skipped damaged files
    /// (exit code 3; each is named).
    SkippedDamaged,
}

/// Prints one JSON object as one line on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints a text generated for the command line (a completion script, a man page) to
/// stdout as it is.
fn print_generated(text: Vec<u8>) -> Result<Status> {
    let text = String::from_utf8(text)?;
    println!("{}", text.strip_suffix('\n').unwrap_or(&text));
    Ok(Status::Success)
}

/// Makes a path given on the command line absolute (against the working directory)
/// without resolving symlinks.
pub fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf> {
    use anyhow::Context;
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}
