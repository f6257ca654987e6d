//! `cairn log archive|push`: an instance's log files, through a mount (`ctl/log`) or
//! with `--repo` in this process. `archive` runs a pass over the instance's `--log`
//! globs now; `push` stores one file whole (PostgreSQL's `archive_command = 'cairn log
//! push pg %p'`), and exits 0 only once it is durable.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use cairn::engine::logs::{LogArchiver, PassOutcome};
use cairn::model::InstanceConfig;

use super::{print_json, Invocation, Status};
use crate::client::{Target, TargetArgs};
use crate::failure::{coded, usage};
use crate::human_units;
use crate::repo_args;

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Archive what is new in the instance's log files now (the daemon also does it
    /// every --log-every seconds).
    Archive(ArchiveArgs),
    /// Store FILE whole as the log file of its name (its last component), e.g.
    /// PostgreSQL's `archive_command = 'cairn log push pg %p'`. Exits 0 only once it is
    /// durable; again with the same bytes: 0; a file of that name with other bytes:
    /// refused (exit 1), it is never replaced.
    Push(PushArgs),
}

#[derive(Args, Debug)]
pub struct ArchiveArgs {
    /// The instance whose log files to archive.
    pub instance: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// With --repo: the log files (absolute GLOB, repeatable) instead of the instance's
    /// definition.
    #[arg(long = "log", value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The instance the log belongs to.
    pub instance: String,
    /// The file to push (relative to the working directory, as PostgreSQL's %p is).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub fn run(inv: &Invocation<'_>, cmd: &LogCommand) -> Result<Status> {
    match cmd {
        LogCommand::Archive(args) => archive(inv, args),
        LogCommand::Push(args) => push(inv, args),
    }
}

fn archive(inv: &Invocation<'_>, args: &ArchiveArgs) -> Result<Status> {
    let outcome = match args.target.resolve()? {
        Target::Mount(client) => {
            if !args.globs.is_empty() {
                return Err(usage(
                    "through a mount the instance's definition holds its log globs: drop --log",
                ));
            }
            let reply = client.request(
                "log",
                &crate::client::Request::verb("archive").kv("instance", &args.instance),
            )?;
            if args.json {
                print_json(&json!({ "instance": args.instance, "reply": reply }))?;
            } else {
                println!("{reply}");
            }
            return Ok(Status::Success);
        }
        Target::Repo(repo) => {
            let repo = repo_args::open_repository(inv.global, &repo)?;
            let catalog = repo_args::open_catalog(&repo)?;
            let globs = if args.globs.is_empty() {
                definition(&repo, &args.instance)?.logs.globs
            } else {
                args.globs.clone()
            };
            if globs.is_empty() {
                return Err(usage(format!(
                    "instance `{}` has no log files: give --log GLOB",
                    args.instance
                )));
            }
            let mut archiver = LogArchiver::load(&catalog, &args.instance)?;
            archiver
                .pass(&repo, &catalog, &globs)
                .with_context(|| format!("log pass of instance `{}` failed", args.instance))?
        }
    };
    print_outcome(&args.instance, &outcome, args.json)?;
    Ok(Status::Success)
}

/// The instance's definition in the repository.
pub fn definition(repo: &cairn::repo::Repository, instance: &str) -> Result<InstanceConfig> {
    let json = repo
        .get_sealed(&InstanceConfig::object_key(instance))
        .map_err(|e| {
            usage(format!(
                "no definition of instance `{instance}` in the repository ({e}): give --log GLOB"
            ))
        })?;
    Ok(InstanceConfig::decode(instance, &json)?)
}

fn print_outcome(instance: &str, o: &PassOutcome, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(&json!({
            "instance": instance,
            "records": o.records.len(),
            "files": o.files,
            "bytes": o.bytes,
            "time": human_units::rfc3339(o.time_ns),
            "warnings": o.warnings,
        }));
    }
    println!(
        "instance {instance}: {} new in {} file(s), {} record(s), as of {}",
        human_units::bytes(o.bytes),
        o.files,
        o.records.len(),
        human_units::rfc3339(o.time_ns)
    );
    for w in &o.warnings {
        eprintln!("cairn: warning: {w}");
    }
    Ok(())
}

fn push(inv: &Invocation<'_>, args: &PushArgs) -> Result<Status> {
    let name = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| usage(format!("{} names no file", args.file.display())))?
        .to_string();
    let data = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    match args.target.resolve()? {
        Target::Mount(client) => {
            let reply = client.push_log(&args.instance, &name, &data)?;
            println!("{reply}");
        }
        Target::Repo(repo) => {
            let repo = repo_args::open_repository(inv.global, &repo)?;
            let catalog = repo_args::open_catalog(&repo)?;
            let mut archiver = LogArchiver::load(&catalog, &args.instance)?;
            let o = archiver
                .push(&repo, &catalog, &name, &data[..])
                .map_err(|e| {
                    coded(
                        1,
                        format!(
                            "push of {name} into instance `{}` failed: {e}",
                            args.instance
                        ),
                        None,
                    )
                })?;
            let state = if o.records.is_empty() {
                "already archived with these bytes"
            } else {
                "stored"
            };
            println!(
                "ok instance={} name={name} bytes={} ({state}, durable)",
                args.instance,
                data.len()
            );
        }
    }
    Ok(Status::Success)
}
