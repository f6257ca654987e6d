//! `cairn repair [--dry-run]`: rebuilds lost index segments from pack headers, moves the
//! readable blobs out of damaged packs and removes those packs, and marks the points that
//! still lack data damaged, through a mount (a job) or directly with `--repo`. Exit 0
//! when the repository is whole at the end, 1 when points remain damaged (each is named
//! with its paths), 2 a usage error or a refused request.

use anyhow::{Context, Result};
use cairn::engine::{self, RepairRequest};
use clap::Args;

use super::{print_json, Invocation, Status};
use crate::client::repair_report::{print_outcome, status_of};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Report what would be rebuilt, salvaged, removed and marked; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &RepairArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            // Always said: a request is never an empty line.
            let req = Request::new().kv("dry-run", if args.dry_run { "true" } else { "false" });
            client::run_job(inv, &client, "repair", &req, args.job)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &RepairArgs, repo: &str) -> Result<Status> {
    let (repo, catalog) = repo_args::open_for_engine(inv.global, repo, args.job.no_wait)?;
    let req = RepairRequest {
        dry_run: args.dry_run,
    };
    let progress = TermProgress::new("starting", "packs", false);
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::repair(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let outcome = outcome.context("repair failed")?;
    let value = serde_json::to_value(&outcome)?;
    // The audit trail of this machine (`cairn events --repo`) keeps what it did.
    let event = cairn::service::events::Event::new("repair-completed")
        .request(serde_json::json!({"dry_run": args.dry_run}))
        .outcome(serde_json::json!({"ok": true, "job_kind": "repair", "result": value}));
    let time_ns = cairn::service::now_ns() / 1_000_000 * 1_000_000;
    if let Err(e) = catalog.append_event(time_ns, &event.kind, &event.line(time_ns).to_string()) {
        tracing::warn!("cannot record the repair as an event: {e}");
    }
    if args.job.json {
        print_json(&value)?;
    } else {
        print_outcome(&value);
    }
    Ok(status_of(&value))
}
