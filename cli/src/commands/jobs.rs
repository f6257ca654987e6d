//! `cairn jobs [ID]` lists a mount's jobs or shows one; `cairn jobs delete ID..` deletes
//! finished ones from the history; `cairn cancel ID` cancels one.

use anyhow::Result;
use cairn::service::{JobKind, JobState, JobStatus};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{print_json, Invocation, Status};
use crate::client::{self, MountPointArg, Request};
use crate::human_units;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub action: Option<JobsAction>,
    /// Show this job's status instead of the list.
    #[arg(value_name = "ID")]
    pub id: Option<u64>,
    #[command(flatten)]
    pub mount: MountPointArg,
    /// With ID: follow the job to its end as the command that started it would (exit 1
    /// if it fails).
    #[arg(long, requires = "id")]
    pub wait: bool,
    /// Print JSON (`{"jobs": [...]}`, or the job's status) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum JobsAction {
    /// Delete finished jobs (succeeded, failed, cancelled, interrupted) from the history,
    /// as `rm -r <mnt>/.cairn/jobs/ID` does; queued and running jobs are refused.
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The jobs to delete.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<u64>,
    #[command(flatten)]
    pub mount: MountPointArg,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The job to cancel (`cairn jobs` lists them).
    #[arg(value_name = "ID")]
    pub id: u64,
    #[command(flatten)]
    pub mount: MountPointArg,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// A short account of where a job is: progress while it runs, its point or error after.
fn detail(s: &JobStatus) -> String {
    match s.state {
        JobState::Running => {
            let p = s.progress();
            let mut out = format!(
                "{}: {} files, {}",
                p.phase.as_deref().unwrap_or("running"),
                p.files,
                human_units::bytes(p.bytes)
            );
            if let Some(pc) = p.percent {
                out.push_str(&format!(" {pc:.0}%"));
            }
            if let Some(eta) = p.eta_seconds {
                out.push_str(&format!(
                    " ETA {}",
                    human_units::duration(std::time::Duration::from_secs_f64(eta.max(0.0)))
                ));
            }
            out
        }
        JobState::Succeeded => match s.result.as_ref().and_then(|r| r["point"].as_str()) {
            Some(point) if s.kind == JobKind::Snapshot => format!("point {point}"),
            Some(point) => format!("from {point}"),
            None => "ok".to_string(),
        },
        JobState::Queued => String::new(),
        _ => s.error.clone().unwrap_or_default(),
    }
}

pub fn run(inv: &Invocation<'_>, args: &JobsArgs) -> Result<Status> {
    if let Some(JobsAction::Delete(d)) = &args.action {
        let client = d.mount.client()?;
        for id in &d.ids {
            client.delete_job(*id)?;
            println!("deleted job {id}");
        }
        return Ok(Status::Success);
    }
    let client = args.mount.client()?;
    if let Some(id) = args.id {
        if args.wait {
            return client::finish_job(inv, &client, id, args.json);
        }
        let s = client.status(id)?;
        if args.json {
            print_json(&serde_json::to_value(&s)?)?;
            return Ok(Status::Success);
        }
        println!("job        {id}");
        println!("kind       {}", s.kind);
        println!("instance   {}", s.instance.as_deref().unwrap_or("(all)"));
        println!("state      {}", s.state);
        let d = detail(&s);
        if !d.is_empty() && s.state != JobState::Failed {
            println!("detail     {d}");
        }
        println!("created    {}", s.created);
        println!("started    {}", text(&s.started));
        println!("finished   {}", text(&s.finished));
        if let Some(e) = &s.error {
            println!("error      {e}");
        }
        println!("request    {}", s.request);
        if let Some(r) = &s.result {
            println!("result     {r}");
        }
        return Ok(Status::Success);
    }
    let mut jobs = Vec::new();
    for id in client.job_ids()? {
        // A job deleted since the listing (or being deleted: `rm -r` unlinks its status
        // first) is left out; otherwise an unreadable status means the mount went away.
        if !client.has_status(id) {
            continue;
        }
        jobs.push(client.status(id)?);
    }
    if args.json {
        print_json(&json!({ "jobs": jobs }))?;
        return Ok(Status::Success);
    }
    if jobs.is_empty() {
        eprintln!("no jobs yet: `cairn snapshot INSTANCE` starts one");
        return Ok(Status::Success);
    }
    let iw = jobs
        .iter()
        .map(|s| text(&s.instance).len())
        .max()
        .unwrap_or(0)
        .max("INSTANCE".len());
    println!(
        "{:>5}  {:<8}  {:<iw$}  {:<11}  {:<24}  DETAIL",
        "ID", "KIND", "INSTANCE", "STATE", "CREATED"
    );
    for s in &jobs {
        println!(
            "{:>5}  {:<8}  {:<iw$}  {:<11}  {:<24}  {}",
            s.id,
            s.kind.as_str(),
            text(&s.instance),
            s.state.as_str(),
            s.created,
            detail(s)
        );
    }
    Ok(Status::Success)
}

pub fn cancel(_inv: &Invocation<'_>, args: &CancelArgs) -> Result<Status> {
    let client = args.mount.client()?;
    let reply = client.request("cancel", &Request::new().kv("job", args.id.to_string()))?;
    println!("{reply}");
    Ok(Status::Success)
}
