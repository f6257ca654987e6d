//! `cairn restore INSTANCE [POINT]`: restores a point into a new directory or over the
//! original paths (after taking a safety point of them), through a mount or directly
//! with `--repo REPO`. Nothing is written at the destination until everything is staged,
//! so a failed or cancelled restore leaves it as it was. `--stdout NAME` writes one file
//! to stdout instead (`restore_stdout`); `--at TIME` restores the state at a second
//! (`restore_at`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use cairn::engine::{self, RestoreMode, RestoreRequest};

use super::restore_at::AtRequest;
use super::restore_stdout::StdoutRequest;
use super::{absolute, print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::failure::usage;
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Into --target, which must not exist or be an empty directory.
    New,
    /// Over the point's original paths (or over --target for a single-directory point),
    /// after taking a safety point of what is there now.
    InPlace,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::New => "new",
            Mode::InPlace => "in-place",
        }
    }
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The instance to restore from.
    pub instance: String,
    /// The point: its name, or `latest` [default: latest].
    pub point: Option<String>,
    /// Restore the instance as it was at TIME instead of a point (RFC 3339 to the
    /// second with an offset or Z, e.g. 2026-12-01T10:30:15Z; the whole second is in):
    /// the newest point at or before it, then its archived logs up to then. Needs
    /// --target; `cairn points INSTANCE` shows the restorable range.
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with_all = ["point", "includes", "delete_excluded", "skip_damaged", "stdout"]
    )]
    pub at: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The directory to restore into (required with --mode new).
    #[arg(long = "target", value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Restore only paths matching GLOB, relative to the point root (`*` stays within a
    /// directory, `**` crosses; a matching directory brings all below it; repeatable).
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    /// With --mode in-place: also delete what the point's excludes kept out of the
    /// backup (by default an in-place restore leaves those paths alone).
    #[arg(long)]
    pub delete_excluded: bool,
    /// Into a new directory, or over the existing data.
    #[arg(long, value_enum, default_value_t = Mode::New)]
    pub mode: Mode,
    /// Restore every intact file and skip the damaged ones, naming each, instead of
    /// restoring nothing; exits 3 when it skipped any (without it a damaged file fails
    /// the restore and the destination stays as it was).
    #[arg(long)]
    pub skip_damaged: bool,
    /// Write the regular file NAME at the top of the point (a --command's or --stdin's
    /// stream, e.g. all.sql) to stdout instead of restoring into a directory:
    /// `cairn restore pg latest --stdout all.sql | psql`.
    #[arg(
        long = "stdout",
        value_name = "NAME",
        conflicts_with_all = ["target_dir", "includes", "delete_excluded", "skip_damaged"]
    )]
    pub stdout: Option<String>,
    #[command(flatten)]
    pub job: JobArgs,
}

impl RestoreArgs {
    pub fn point(&self) -> &str {
        self.point.as_deref().unwrap_or("latest")
    }
}

pub fn run(inv: &Invocation<'_>, args: &RestoreArgs) -> Result<Status> {
    if let Some(at) = &args.at {
        let req = AtRequest {
            instance: &args.instance,
            at,
            target_dir: args.target_dir.as_deref(),
            in_place: args.mode == Mode::InPlace,
            target: &args.target,
            job: args.job,
        };
        return super::restore_at::run(inv, &req);
    }
    if let Some(name) = &args.stdout {
        if args.mode == Mode::InPlace {
            return Err(usage("--stdout writes to stdout: drop --mode in-place"));
        }
        let req = StdoutRequest {
            instance: &args.instance,
            point: args.point(),
            name,
            target: &args.target,
            no_wait: args.job.no_wait,
        };
        return super::restore_stdout::run(inv, &req);
    }
    if args.delete_excluded && args.mode != Mode::InPlace {
        return Err(usage("--delete-excluded applies to --mode in-place only"));
    }
    if args.mode == Mode::New && args.target_dir.is_none() {
        return Err(usage(
            "--target DIR is needed to restore into a new directory \
             (--mode in-place restores over the original paths instead)",
        ));
    }
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            let mut req = Request::new()
                .kv("instance", &args.instance)
                .kv("point", args.point());
            if let Some(t) = &args.target_dir {
                req = req.path("target", &absolute(t)?)?;
            }
            for g in &args.includes {
                req = req.kv("include", g);
            }
            req = req.kv("mode", args.mode.name());
            if args.delete_excluded {
                req = req.kv("delete-excluded", "true");
            }
            if args.skip_damaged {
                req = req.kv("skip-damaged", "true");
            }
            client::run_job(inv, &client, "restore", &req, args.job)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &RestoreArgs, repo: &str) -> Result<Status> {
    let (repo, catalog) = repo_args::open_for_engine(inv.global, repo, args.job.no_wait)?;
    let req = RestoreRequest {
        instance: args.instance.clone(),
        point: args.point().to_string(),
        target: args.target_dir.as_deref().map(absolute).transpose()?,
        includes: args.includes.clone(),
        mode: match args.mode {
            Mode::New => RestoreMode::New,
            Mode::InPlace => RestoreMode::InPlace,
        },
        delete_excluded: args.delete_excluded,
        skip_damaged: args.skip_damaged,
    };
    let progress = TermProgress::new("starting", "files", true);
    let start = Instant::now();
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::restore(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let outcome = outcome.with_context(|| {
        format!(
            "restore of {}/{} failed; the destination was left as it was",
            args.instance,
            args.point()
        )
    })?;
    let elapsed = start.elapsed();
    progress.print_unseen_warnings(&outcome.warnings);
    let throughput = human_units::bytes_per_sec(outcome.bytes, elapsed);
    if args.job.json {
        print_json(&json!({
            "instance": args.instance,
            "point": outcome.point,
            "target": req.target,
            "mode": args.mode.name(),
            "files": outcome.files,
            "bytes": outcome.bytes,
            "written": outcome.written,
            "removed": outcome.removed,
            "safety_point": outcome.safety_point,
            "duration_secs": elapsed.as_secs_f64(),
            "bytes_per_sec": throughput,
            "warnings": outcome.warnings,
            "skipped": outcome.skipped,
            "corrected": outcome.corrected,
        }))?;
    } else {
        println!("restored   {}/{}", args.instance, outcome.point);
        match &req.target {
            Some(t) => println!("into       {}", t.display()),
            None => println!("into       the original paths"),
        }
        println!(
            "files      {} ({} written, {} removed)",
            outcome.files, outcome.written, outcome.removed
        );
        println!("bytes      {}", human_units::bytes(outcome.bytes));
        if let Some(s) = &outcome.safety_point {
            println!(
                "safety     {}/{s} holds what was there before (restore it to undo)",
                args.instance
            );
        }
        client::print_skipped(outcome.skipped.iter().map(String::as_str));
        client::print_corrected(&outcome.corrected);
        println!("duration   {}", human_units::duration(elapsed));
        println!("throughput {}/s", human_units::bytes(throughput));
    }
    Ok(if outcome.skipped.is_empty() {
        Status::Success
    } else {
        Status::SkippedDamaged
    })
}
