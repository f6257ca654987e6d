//! `cairn restore INSTANCE --at TIME --target DIR`: the instance as it was at one second
//! (its newest point at or before TIME, then its logs cut at TIME), through a mount
//! (`restore instance=.. at=.. target=..` in `ctl/restore`, a job) or with `--repo` in
//! this process. A time outside the restorable range, or behind a gap in the logs, is
//! refused and nothing is written.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use cairn::engine::logs::{format_pitr_time, parse_pitr_time, restore_at, PitrRequest};

use std::path::Path;

use super::{absolute, print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::failure::usage;
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

/// What `cairn restore --at` was given.
pub struct AtRequest<'a> {
    pub instance: &'a str,
    pub at: &'a str,
    pub target_dir: Option<&'a Path>,
    pub in_place: bool,
    pub target: &'a TargetArgs,
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &AtRequest<'_>) -> Result<Status> {
    let at = args.at;
    let Some(target) = args.target_dir else {
        return Err(usage(
            "--at restores into a new directory: give --target DIR",
        ));
    };
    if args.in_place {
        return Err(usage(
            "--at restores into a new directory (--target DIR): drop --mode in-place",
        ));
    }
    let target = absolute(target)?;
    match args.target.resolve()? {
        Target::Mount(client) => {
            let req = Request::new()
                .kv("instance", args.instance)
                .kv("at", at)
                .path("target", &target)?;
            client::run_job(inv, &client, "restore", &req, args.job)
        }
        Target::Repo(repo) => {
            let at_ns = parse_pitr_time(at).map_err(usage)?;
            let (repo, catalog) = repo_args::open_for_engine(inv.global, &repo, args.job.no_wait)?;
            let config = super::log::definition(&repo, args.instance)?;
            let req = PitrRequest {
                config,
                at_ns,
                target: target.clone(),
                last_pass_ns: None,
            };
            let progress = TermProgress::new("starting", "files", true);
            let start = Instant::now();
            let outcome = {
                let _armed = inv.interrupts.arm();
                restore_at(&repo, &catalog, &req, &progress, inv.interrupts.token())
            };
            progress.finish();
            let out = outcome.with_context(|| {
                format!(
                    "restore of {} at {at} failed; nothing was written",
                    args.instance
                )
            })?;
            let r = &out.restore;
            progress.print_unseen_warnings(&r.warnings);
            let elapsed = start.elapsed();
            if args.job.json {
                print_json(&json!({
                    "instance": args.instance,
                    "at": format_pitr_time(out.at_ns),
                    "point": r.point,
                    "target": target,
                    "files": r.files,
                    "bytes": r.bytes,
                    "logs": out.logs,
                    "log_bytes": out.log_bytes,
                    "extras": out.extras,
                    "duration_secs": elapsed.as_secs_f64(),
                    "warnings": r.warnings,
                }))?;
            } else {
                println!(
                    "restored   {} at {}",
                    args.instance,
                    format_pitr_time(out.at_ns)
                );
                println!("from       {}/{}", args.instance, r.point);
                println!("into       {}", target.display());
                println!("files      {} ({})", r.files, human_units::bytes(r.bytes));
                println!(
                    "logs       {} file(s), {}",
                    out.logs,
                    human_units::bytes(out.log_bytes)
                );
                println!("duration   {}", human_units::duration(elapsed));
            }
            Ok(Status::Success)
        }
    }
}
