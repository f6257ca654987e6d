//! `cairn repair [--dry-run]`: rebuilds lost index segments from pack headers, moves the
//! readable blobs out of damaged packs and removes those packs, and marks the points that
//! still lack data damaged, through a mount (a job) or directly with `--repo`. Exit 0
//! when the repository is whole at the end, 1 when points remain damaged (each is named
//! with its paths), 2 a usage error or a refused request.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;

use cairn::engine::{self, RepairRequest};

use super::{print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::human_units;
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
    if args.job.json {
        print_json(&value)?;
    } else {
        print_outcome(&value);
    }
    Ok(status_of(&value))
}

/// Exit 1 when points remain damaged.
pub fn status_of(outcome: &Value) -> Status {
    match outcome["damaged_points"].as_array() {
        Some(points) if !points.is_empty() => Status::ProblemFound,
        _ => Status::Success,
    }
}

/// Prints a repair's outcome (its JSON, as the engine and the job give it).
pub fn print_outcome(o: &Value) {
    let u = |k: &str| o[k].as_u64().unwrap_or(0);
    let would = if o["dry_run"].as_bool().unwrap_or(false) {
        "would be "
    } else {
        ""
    };
    println!("checked    {} packs", u("packs_checked"));
    println!(
        "rebuilt    {} index segment(s) {would}written for {} pack(s) no segment listed",
        u("segments_rebuilt"),
        u("packs_reindexed")
    );
    for p in o["damaged_packs"].as_array().into_iter().flatten() {
        println!(
            "DAMAGED    {}: {} ({} blob(s) readable, {} not)",
            p["pack"].as_str().unwrap_or("?"),
            p["why"].as_str().unwrap_or(""),
            p["blobs_readable"].as_u64().unwrap_or(0),
            p["blobs_unreadable"].as_u64().unwrap_or(0)
        );
    }
    println!(
        "salvaged   {} pack(s) {would}salvaged: {} blob(s) {would}moved ({})",
        u("packs_salvaged"),
        u("blobs_moved"),
        human_units::bytes(u("bytes_moved"))
    );
    println!(
        "removed    {} damaged pack(s) {would}removed, {} missing; {} index segment(s) {would}rewritten",
        u("packs_removed"),
        u("packs_missing"),
        u("segments_rewritten")
    );
    println!(
        "lost       {} blob(s) have no readable copy",
        u("blobs_lost")
    );
    for p in o["damaged_points"].as_array().into_iter().flatten() {
        let new = if p["newly_marked"].as_bool().unwrap_or(false) {
            ""
        } else {
            " (already marked)"
        };
        println!(
            "DAMAGED    {}/{}{new}",
            p["instance"].as_str().unwrap_or("?"),
            p["point"].as_str().unwrap_or("?")
        );
        for path in p["paths"].as_array().into_iter().flatten() {
            println!("  path     {}", path.as_str().unwrap_or(""));
        }
    }
    if u("marks_cleared") > 0 {
        println!(
            "healed     {} damage mark(s) {would}cleared (their points read whole again)",
            u("marks_cleared")
        );
    }
    match status_of(o) {
        Status::Success => println!("ok: the repository is whole"),
        _ => println!(
            "damaged    {} point(s) {would}marked damaged ({} newly): `cairn points --kind damaged` lists them",
            o["damaged_points"].as_array().map_or(0, Vec::len),
            u("points_marked")
        ),
    }
}
