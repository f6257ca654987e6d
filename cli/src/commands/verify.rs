//! `cairn verify`: exit 0 when clean, 1 when damage was found (each damaged point is
//! named with its paths, each broken log archive with its instance and time range). Directly (`--repo REPO`) any error is exit 2; through a mount
//! the verify is a job, and a job that failed or found damage is exit 1, a refused
//! request 2.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::engine::{self, VerifyReport, VerifyRequest};

use super::{print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::human_units;
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only this instance's points.
    #[arg(long, value_name = "INSTANCE")]
    pub instance: Option<String>,
    /// Only this point (a name or `latest`) of --instance.
    #[arg(long, value_name = "POINT", requires = "instance")]
    pub point: Option<String>,
    /// Also download all referenced data and check every blob (reads the whole
    /// repository).
    #[arg(long)]
    pub read_data: bool,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &VerifyArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            let mut req = Request::new();
            if let Some(i) = &args.instance {
                req = req.kv("instance", i);
            }
            if let Some(p) = &args.point {
                req = req.kv("point", p);
            }
            // Always said: a request is never an empty line.
            req = req.kv("read-data", if args.read_data { "true" } else { "false" });
            client::run_job(inv, &client, "verify", &req, args.job)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &VerifyArgs, repo: &str) -> Result<Status> {
    let (repo, catalog) = repo_args::open_for_engine(inv.global, repo, args.job.no_wait)?;
    let req = VerifyRequest {
        instance: args.instance.clone(),
        point: args.point.clone(),
        read_data: args.read_data,
    };
    let progress = TermProgress::new("starting", "objects", false);
    let report = {
        let _armed = inv.interrupts.arm();
        engine::verify(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let report = report.context("verify could not complete")?;
    if args.job.json {
        let mut value = serde_json::to_value(&report)?;
        value["ok"] = json!(report.is_ok());
        value["read_data"] = json!(args.read_data);
        print_json(&value)?;
    } else {
        print_report(&report, args.read_data);
    }
    Ok(if report.is_ok() {
        Status::Success
    } else {
        Status::ProblemFound
    })
}

fn print_report(r: &VerifyReport, read_data: bool) {
    println!(
        "checked    {} points, {} trees, {} blobs, {} packs{}",
        r.points_checked,
        r.trees_checked,
        r.blobs_checked,
        r.packs_checked,
        if read_data {
            format!(", read {}", human_units::bytes(r.bytes_read))
        } else {
            " (structure only; --read-data also checks the data)".to_string()
        }
    );
    for d in &r.damaged {
        println!("DAMAGED    {}/{}", d.instance, d.point);
        for p in &d.paths {
            println!("  path     {p}");
        }
        for c in &d.causes {
            println!("  cause    {c}");
        }
    }
    for d in &r.log_damage {
        println!("DAMAGED    {}", d.message);
    }
    for p in &r.problems {
        println!("PROBLEM    {p}");
    }
    for h in &r.healed {
        println!("HEALED     {h}");
    }
    client::print_corrected(&r.corrected);
    if r.is_ok() {
        println!("ok: no damage found");
    } else {
        let logs = match r.log_damage.len() {
            0 => String::new(),
            n => format!(", {n} damaged log range(s)"),
        };
        println!(
            "damage found: {} damaged point(s), {} repository problem(s){logs}",
            r.damaged.len(),
            r.problems.len()
        );
    }
}
