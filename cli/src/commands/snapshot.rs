//! `cairn snapshot INSTANCE --repo REPO --path P..`: backs up paths as a new point.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::engine::{self, BackupRequest};

use super::{absolute, print_json, Invocation, Status};
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args::{self, RepoArgs};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// The instance the point belongs to (1-255 of A-Z a-z 0-9 _ -).
    pub instance: String,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A file or directory to back up (repeat for several).
    #[arg(long = "path", value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Skip entries whose path relative to their source matches GLOB (`*` crosses `/`;
    /// repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// A label appended to the point's name, e.g. `before-upgrade`.
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// Print one JSON object on stdout at the end instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(inv: &Invocation<'_>, args: &SnapshotArgs) -> Result<Status> {
    let repo = repo_args::open_repository(inv.global, &args.repo.repo)?;
    let catalog = repo_args::open_catalog(&repo)?;
    let paths = args
        .paths
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let mut req = BackupRequest::new(&args.instance, paths);
    req.excludes = args.excludes.clone();
    req.label = args.label.clone();

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
    if args.json {
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
