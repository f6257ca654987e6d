//! `cairn check` (a point against the live data) and `cairn diff` (two points): the
//! differences, one line a path, and exit codes like diff(1): 0 same, 1 different, 2 an
//! error (an entry that could not be read, or a check that could not run; errors win
//! over differences). Directly (`--repo`) the engine runs in this process; through a
//! mount it is a `check` job (`ctl/check`), followed like verify, whose differences are
//! read from `jobs/<id>/differences`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{ArgAction, Args};
use serde_json::json;

use cairn::engine::check::{CheckReport, Difference};
use cairn::engine::{self, CheckRequest, DiffRequest};
use cairn::service::JobState;

use super::{absolute, print_json, Invocation, Status};
use crate::client::{self, follow, Client, JobArgs, Request, Target, TargetArgs};
use crate::failure::coded;
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The instance whose point is compared.
    pub instance: String,
    /// The point (a name or `latest`).
    #[arg(default_value = "latest")]
    pub point: String,
    /// Compare with this directory (else the point's own source paths, mapped as an
    /// in-place restore maps them).
    #[arg(long, value_name = "PATH")]
    pub against: Option<PathBuf>,
    /// Threads reading the live side, 1 to 16 (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
    pub threads: Option<u8>,
    /// Leave out paths matching GLOB (relative to the point's root, `*` crosses `/`);
    /// they are counted as ignored. Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// `false`: compare size and mtime only, not content (a same-size change whose
    /// mtime was put back is then missed).
    #[arg(long, value_name = "true|false", action = ArgAction::Set, default_value_t = true)]
    pub checksum: bool,
    /// The same as `--checksum false`.
    #[arg(long, conflicts_with = "checksum")]
    pub no_checksum: bool,
    /// Read at most MB megabytes (10^6 bytes) a second from the live side.
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub bandwidth: Option<u64>,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The instance whose points are compared.
    pub instance: String,
    /// The first point: what only it has is `removed`.
    pub point_a: String,
    /// The second point: what only it has is `added`.
    pub point_b: String,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn check(inv: &Invocation<'_>, args: &CheckArgs) -> Result<Status> {
    let against = args.against.as_deref().map(absolute).transpose()?;
    let checksum = args.checksum && !args.no_checksum;
    match args.target.resolve()? {
        Target::Repo(repo) => {
            let req = CheckRequest {
                instance: args.instance.clone(),
                point: args.point.clone(),
                against,
                threads: args.threads.map(usize::from),
                ignores: args.ignore.clone(),
                checksum,
                bandwidth_mb: args.bandwidth,
            };
            direct(inv, &repo, args.job, |repo, catalog, progress| {
                engine::check(repo, catalog, &req, progress, inv.interrupts.token())
            })
        }
        Target::Mount(client) => {
            let mut req = Request::new()
                .kv("instance", &args.instance)
                .kv("point", &args.point);
            if let Some(p) = &against {
                req = req.path("against", p)?;
            }
            if let Some(t) = args.threads {
                req = req.kv("threads", t.to_string());
            }
            for g in &args.ignore {
                req = req.kv("ignore", g);
            }
            req = req.kv("checksum", checksum.to_string());
            if let Some(b) = args.bandwidth {
                req = req.kv("bandwidth", b.to_string());
            }
            through_mount(inv, &client, &req, args.job)
        }
    }
}

pub fn diff(inv: &Invocation<'_>, args: &DiffArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => {
            let req = DiffRequest {
                instance: args.instance.clone(),
                point_a: args.point_a.clone(),
                point_b: args.point_b.clone(),
            };
            direct(inv, &repo, args.job, |repo, catalog, progress| {
                engine::diff(repo, catalog, &req, progress, inv.interrupts.token())
            })
        }
        Target::Mount(client) => {
            let req = Request::new()
                .kv("instance", &args.instance)
                .kv("point", &args.point_a)
                .kv("other", &args.point_b);
            through_mount(inv, &client, &req, args.job)
        }
    }
}

fn direct(
    inv: &Invocation<'_>,
    repo: &str,
    job: JobArgs,
    run: impl FnOnce(
        &cairn::repo::Repository,
        &std::sync::Arc<cairn::catalog::Catalog>,
        &TermProgress,
    ) -> cairn::engine::Result<CheckReport>,
) -> Result<Status> {
    let (repo, catalog) = repo_args::open_for_engine(inv.global, repo, job.no_wait)?;
    let progress = TermProgress::new("starting", "files", false);
    let report = {
        let _armed = inv.interrupts.arm();
        run(&repo, &catalog, &progress)
    };
    progress.finish();
    let report = report.context("the comparison could not complete")?;
    finish(&report, job.json, None)
}

fn through_mount(
    inv: &Invocation<'_>,
    client: &Client,
    req: &Request,
    job: JobArgs,
) -> Result<Status> {
    if job.no_wait {
        return client::run_job(inv, client, "check", req, job);
    }
    let id = client.start_job("check", req)?;
    let status = follow::follow(inv, client, id)?;
    if status.state != JobState::Succeeded {
        if job.json {
            print_json(&serde_json::to_value(&status)?)?;
        }
        return Err(coded(
            2,
            format!(
                "job {id} (check) {}: {}",
                status.state,
                status.error.as_deref().unwrap_or("no cause recorded")
            ),
            Some(format!(
                "`cairn jobs {id}` shows its status; {} has its log",
                client.job_dir(id).join("log").display()
            )),
        ));
    }
    let mut report: CheckReport = serde_json::from_value(status.result.unwrap_or_default())
        .context("the check job's result is not a check report")?;
    let path = client.job_dir(id).join("differences");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    report.differences = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str::<Difference>)
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("{} is not JSON lines of differences", path.display()))?;
    finish(&report, job.json, Some(id))
}

/// Prints the report; the exit status diff(1) gives.
fn finish(report: &CheckReport, json: bool, job: Option<u64>) -> Result<Status> {
    if json {
        let mut value = serde_json::to_value(report)?;
        value["exit_code"] = json!(report.exit_code());
        if let Some(id) = job {
            value["job"] = json!(id);
        }
        print_json(&value)?;
    } else {
        print_text(report);
    }
    match report.exit_code() {
        0 => Ok(Status::Success),
        1 => Ok(Status::ProblemFound),
        _ => Err(coded(
            2,
            format!("{} entries could not be compared", report.counts.errors),
            None,
        )),
    }
}

fn print_text(r: &CheckReport) {
    for d in &r.differences {
        if d.aspects.is_empty() {
            println!("{:<8} {}", d.kind.as_str(), d.path);
        } else {
            let aspects: Vec<&str> = d.aspects.iter().map(|a| a.as_str()).collect();
            println!(
                "{:<8} {}  ({})",
                d.kind.as_str(),
                d.path,
                aspects.join(", ")
            );
        }
    }
    for e in &r.errors {
        println!("error    {e}");
    }
    let c = &r.counts;
    println!(
        "same {}, differ {}, only in point {}, only in live {}, errors {}, ignored {}",
        c.same, c.differ, c.only_in_point, c.only_in_live, c.errors, c.ignored
    );
    let secs = r.elapsed_ms as f64 / 1000.0;
    match &r.other {
        Some(b) => println!(
            "compared   {} with {} ({} trees read)",
            r.point, b, r.trees_read
        ),
        None => println!(
            "compared   {} with {} (read {} of live data in {secs:.1} s)",
            r.point,
            r.against.join(", "),
            human_units::bytes(r.live_bytes_read)
        ),
    }
}
