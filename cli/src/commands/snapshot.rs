//! `cairn snapshot INSTANCE`: takes a new point of an instance, through a mount (the
//! instance's definition holds its paths) or directly with `--repo REPO --path P..`,
//! optionally with stdin as a stream (`--stdin NAME`; through a mount it is written into
//! the job's input, `client::input`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::engine::{self, BackupRequest, StreamSource};

use super::{absolute, print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::failure::usage;
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The instance the point belongs to (1-255 of A-Z a-z 0-9 _ -).
    pub instance: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// With --repo: a file or directory to back up (repeat for several). Through a mount
    /// the instance's definition holds the paths (`cairn instance add`).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// With --repo: skip entries whose path relative to their source matches GLOB (`*`
    /// crosses `/`; repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Store stdin as the file NAME at the top of the point, after the paths (with
    /// --repo, --path is then optional; through a mount, after the instance's paths and
    /// commands), e.g. `pg_dump app | cairn snapshot app --stdin app.sql`. The stream is
    /// complete when stdin reaches its end: run the pipeline with `set -o pipefail` to
    /// fail on a writer that dies early; a read error (or a killed cairn) fails, and
    /// Ctrl-C cancels the job.
    #[arg(long = "stdin", value_name = "NAME")]
    pub stdin: Option<String>,
    /// A label appended to the point's name, e.g. `before-upgrade` (not `auto` or
    /// `before-restore`: reserved).
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &SnapshotArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            if !args.paths.is_empty() || !args.excludes.is_empty() {
                return Err(usage(format!(
                    "through a mount the instance's definition holds its paths and excludes: \
                     drop --path/--exclude (`cairn instance add {} --path P` defines them), or \
                     use --repo REPO to back up paths directly",
                    args.instance
                )));
            }
            let mut req = Request::new().kv("instance", &args.instance);
            if let Some(l) = &args.label {
                req = req.kv("name", l);
            }
            let Some(name) = &args.stdin else {
                return client::run_job(inv, &client, "snapshot", &req, args.job);
            };
            if args.job.no_wait {
                return Err(usage(
                    "--stdin streams stdin into the job until its end: drop --no-wait",
                ));
            }
            let id = client.start_job("snapshot", &req.kv("stdin", name))?;
            // Whether the stream was refused or not, the job's status tells the outcome;
            // after an interrupt, the follow cancels the job.
            client.stream_stdin(inv.interrupts, id)?;
            client::finish_job(inv, &client, id, args.job.json)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &SnapshotArgs, repo: &str) -> Result<Status> {
    if args.paths.is_empty() && args.stdin.is_none() {
        return Err(usage(
            "--path PATH (repeat it for several paths) or --stdin NAME is needed with --repo",
        ));
    }
    if args.job.no_wait {
        return Err(usage(
            "--no-wait works through a mount (--mount DIR), not with --repo",
        ));
    }
    let repo = repo_args::open_repository(inv.global, repo)?;
    let catalog = repo_args::open_catalog_unrefreshed(&repo)?;
    let paths = args
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let mut req = BackupRequest::new(&args.instance, paths);
    req.excludes = args.excludes.clone();
    req.label = args.label.clone();
    if let Some(name) = &args.stdin {
        // Stdin has no producer to ask: reaching its end is success.
        let stdin = StreamSource::new(name, Box::new(std::io::stdin()), Box::new(|| Ok(())));
        req.streams.push(stdin);
    }

    let progress = TermProgress::new("starting", "files", true);
    let start = Instant::now();
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::backup(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let outcome =
        outcome.with_context(|| format!("snapshot of instance `{}` failed", args.instance))?;
    let elapsed = start.elapsed();
    progress.print_unseen_warnings(&outcome.warnings);

    let m = &outcome.manifest;
    let s = &m.stats;
    let throughput = human_units::bytes_per_sec(s.bytes, elapsed);
    if args.job.json {
        print_json(&json!({
            "instance": m.instance,
            "point": m.name,
            "id": outcome.id.to_hex(),
            "time": human_units::rfc3339(m.time_ns),
            "files": s.files,
            "dirs": s.dirs,
            "bytes": s.bytes,
            "new_bytes": s.new_bytes,
            "stored_bytes": s.stored_bytes,
            "files_read": s.files_read,
            "duration_secs": elapsed.as_secs_f64(),
            "bytes_per_sec": throughput,
            "warnings": outcome.warnings,
        }))?;
    } else {
        println!("point      {}/{}", m.instance, m.name);
        println!(
            "files      {} ({} read, the rest unchanged), {} directories",
            s.files, s.files_read, s.dirs
        );
        println!("bytes      {}", human_units::bytes(s.bytes));
        println!("new        {}", human_units::bytes(s.new_bytes));
        println!("stored     {}", human_units::bytes(s.stored_bytes));
        println!("duration   {}", human_units::duration(elapsed));
        println!("throughput {}/s", human_units::bytes(throughput));
        if !outcome.warnings.is_empty() {
            eprintln!(
                "cairn: the point was written with {} warning(s) (see above)",
                outcome.warnings.len()
            );
        }
    }
    Ok(Status::Success)
}
