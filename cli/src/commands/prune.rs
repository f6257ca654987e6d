//! `cairn prune [--dry-run]`: removes data no point references, in two phases (a plan
//! now, the deletion in a later prune after the grace period), through a mount (a job)
//! or directly with `--repo`.

use anyhow::{Context, Result};
use clap::Args;

use cairn::engine::{self, PruneOutcome, PruneRequest};

use super::{print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Report what would be condemned and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Hours between condemning data and deleting it (default 24). It must exceed the
    /// longest backup another machine may run meanwhile; 0 only when none does.
    #[arg(long, value_name = "HOURS")]
    pub grace_hours: Option<u32>,
    /// Take over the prune lease of another host whose prune is dead (a lease of a prune
    /// of this host that is gone is taken over without it). Recorded as an event.
    #[arg(long)]
    pub break_lease: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &PruneArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            // Always said: a request is never an empty line.
            let mut req = Request::new().kv("dry-run", if args.dry_run { "true" } else { "false" });
            if let Some(h) = args.grace_hours {
                req = req.kv("grace-hours", h.to_string());
            }
            if args.break_lease {
                req = req.kv("break-lease", "true");
            }
            client::run_job(inv, &client, "prune", &req, args.job)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &PruneArgs, repo: &str) -> Result<Status> {
    let (repo, catalog) = repo_args::open_for_engine(inv.global, repo, args.job.no_wait)?;
    let mut req = PruneRequest {
        dry_run: args.dry_run,
        break_lease: args.break_lease,
        ..Default::default()
    };
    if let Some(h) = args.grace_hours {
        req.grace_ns = i64::from(h) * 3_600 * 1_000_000_000;
    }
    let progress = TermProgress::new("starting", "items", false);
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::prune(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let outcome = outcome.context("prune failed")?;
    if let Some(taken) = &outcome.lease_taken_over {
        // The audit trail of this machine (`cairn events --repo`) keeps the takeover.
        let request = serde_json::json!({"dry_run": args.dry_run, "break_lease": args.break_lease});
        let event = cairn::service::events::lease_taken_over(taken, request);
        let time_ns = cairn::service::now_ns() / 1_000_000 * 1_000_000;
        if let Err(e) = catalog.append_event(time_ns, &event.kind, &event.line(time_ns).to_string())
        {
            tracing::warn!("cannot record the lease takeover as an event: {e}");
        }
    }
    if args.job.json {
        print_json(&serde_json::to_value(&outcome)?)?;
    } else {
        print_outcome(&outcome);
    }
    Ok(Status::Success)
}

fn print_outcome(o: &PruneOutcome) {
    let would = if o.dry_run { "would be " } else { "" };
    println!("referenced {} blobs", o.blobs_referenced);
    println!(
        "deleted    {} packs {would}deleted, {} {would}freed ({} kept: still referenced)",
        o.packs_deleted,
        human_units::bytes(o.bytes_freed),
        o.packs_kept
    );
    println!(
        "condemned  {} packs {would}condemned, {} of them repacked ({} copied)",
        o.packs_condemned,
        o.packs_repacked,
        human_units::bytes(o.bytes_repacked)
    );
    if o.log_records_deleted > 0 {
        println!(
            "logs       {} log records {would}deleted ({} of logs)",
            o.log_records_deleted,
            human_units::bytes(o.log_bytes_deleted)
        );
    }
    match o.next_sweep_ns {
        Some(t) => println!(
            "pending    {} plan(s); the next deletion is due at {} (run prune again then)",
            o.plans_pending,
            human_units::rfc3339(t)
        ),
        None => println!("pending    nothing"),
    }
    if let Some(t) = &o.lease_taken_over {
        let host = t.previous.as_ref().map_or("?", |r| r.host.as_str());
        let reason = serde_json::to_value(t.reason).unwrap_or_default();
        println!(
            "lease      taken over from host `{host}` ({})",
            reason.as_str().unwrap_or("")
        );
    }
}
