//! `cairn forget INSTANCE POINT..`: removes points (manual ones only with `--manual`),
//! through a mount (a job) or directly with `--repo`. The data stays until `cairn prune`.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use cairn::engine::{self, ForgetRequest};

use super::{print_json, Invocation, Status};
use crate::client::{self, JobArgs, Request, Target, TargetArgs};
use crate::progress::TermProgress;
use crate::repo_args;

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The instance whose points go.
    pub instance: String,
    /// Point names, or `latest`.
    #[arg(required = true, value_name = "POINT")]
    pub points: Vec<String>,
    /// Also forget manual points (they are never removed otherwise).
    #[arg(long)]
    pub manual: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(inv: &Invocation<'_>, args: &ForgetArgs) -> Result<Status> {
    match args.target.resolve()? {
        Target::Repo(repo) => direct(inv, args, &repo),
        Target::Mount(client) => {
            let mut req = Request::new().kv("instance", &args.instance);
            for p in &args.points {
                req = req.kv("point", p);
            }
            if args.manual {
                req = req.kv("manual", "true");
            }
            client::run_job(inv, &client, "forget", &req, args.job)
        }
    }
}

fn direct(inv: &Invocation<'_>, args: &ForgetArgs, repo: &str) -> Result<Status> {
    let (repo, catalog) = repo_args::open_direct(inv.global, repo, args.job.no_wait)?;
    let refusal = cairn::service::policies::write_once_refusal_in(
        &repo,
        &catalog,
        &args.instance,
        &args.points,
        cairn::model::now_ns(),
    )?;
    if let Some(message) = refusal {
        return Err(crate::failure::usage(message));
    }
    let req = ForgetRequest {
        instance: args.instance.clone(),
        points: args.points.clone(),
        allow_manual: args.manual,
    };
    let progress = TermProgress::new("starting", "points", false);
    let outcome = {
        let _armed = inv.interrupts.arm();
        engine::forget(&repo, &catalog, &req, &progress, inv.interrupts.token())
    };
    progress.finish();
    let outcome =
        outcome.with_context(|| format!("forget in instance `{}` failed", args.instance))?;
    if args.job.json {
        print_json(&json!({"instance": args.instance, "removed": outcome.removed}))?;
    } else {
        for p in &outcome.removed {
            println!("forgotten  {}/{p}", args.instance);
        }
        println!("(the data stays until `cairn prune` reclaims it)");
    }
    Ok(Status::Success)
}
