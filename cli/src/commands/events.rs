//! `cairn events [--since T] [--until T] [--kind K]..`: the audit trail, oldest first:
//! the `.cairn/events` file of a mount, or with `--repo` the events table of the local
//! catalog (the history of the daemons that ran on this machine).

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};

use cairn::catalog::{self, Catalog, EventQuery};
use cairn::service::EVENT_KINDS;

use super::{print_json, Invocation, Status};
use crate::client::{Client, Target, TargetArgs};
use crate::repo_args;
use crate::time_args::TimeRangeArgs;

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub range: TimeRangeArgs,
    /// Only events of this kind (repeat for several), e.g. point-created, job-failed,
    /// job-deleted, instance-added, policy-created; `cairn events --help` lists them.
    #[arg(long = "kind", value_name = "KIND", long_help = kinds_help())]
    pub kinds: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print one JSON object (`{"events": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn kinds_help() -> String {
    format!(
        "Only events of this kind (repeat for several). Kinds: {}.",
        EVENT_KINDS.join(", ")
    )
}

pub fn run(inv: &Invocation<'_>, args: &EventsArgs) -> Result<Status> {
    let (since_ns, until_ns) = args.range.range()?;
    for k in &args.kinds {
        if !EVENT_KINDS.contains(&k.as_str()) {
            eprintln!(
                "warning: no event kind `{k}` is known to this cairn (known: {})",
                EVENT_KINDS.join(", ")
            );
        }
    }
    let query = EventQuery {
        since_ns,
        until_ns,
        kinds: args.kinds.clone(),
    };
    let events = match args.target.resolve()? {
        Target::Repo(repo) => from_catalog(inv, &repo, &query)?,
        Target::Mount(client) => from_mount(&client, &query)?,
    };
    if args.json {
        print_json(&json!({ "events": events }))?;
        return Ok(Status::Success);
    }
    if events.is_empty() {
        eprintln!("no events match");
        return Ok(Status::Success);
    }
    let kw = events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").len())
        .max()
        .unwrap_or(0);
    for e in &events {
        println!(
            "{:<24}  {:<kw$}  {:<9}  {}",
            e["time"].as_str().unwrap_or("-"),
            e["kind"].as_str().unwrap_or("-"),
            e["uid"]
                .as_u64()
                .map(|u| format!("uid={u}"))
                .unwrap_or_else(|| "daemon".to_string()),
            detail(e)
        );
    }
    Ok(Status::Success)
}

/// `db/2026-11-22T031522Z job 3: <request or error>`.
fn detail(e: &Value) -> String {
    let mut parts = Vec::new();
    match (e["instance"].as_str(), e["point"].as_str()) {
        (Some(i), Some(p)) => parts.push(format!("{i}/{p}")),
        (Some(i), None) => parts.push(i.to_string()),
        _ => {}
    }
    if let Some(j) = e["job"].as_u64() {
        parts.push(format!("job {j}"));
    }
    let mut out = parts.join(" ");
    let o = &e["outcome"];
    let tail = match (o["error"].as_str(), e["request"].as_str()) {
        (Some(err), _) => Some(err.to_string()),
        (None, Some(req)) if !req.is_empty() => Some(req.to_string()),
        _ => None,
    };
    if let Some(t) = tail {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

/// The lines of `.cairn/events` the query wants.
fn from_mount(client: &Client, q: &EventQuery) -> Result<Vec<Value>> {
    let path = client.dir.join(".cairn/events");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{} holds a line that is not JSON", path.display()))?;
        let time = v["time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .and_then(|t| t.timestamp_nanos_opt());
        if let Some(t) = time {
            if q.matches(t, v["kind"].as_str().unwrap_or("")) {
                out.push(v);
            }
        }
    }
    out.sort_by_key(|v| v["time"].as_str().unwrap_or("").to_string());
    Ok(out)
}

/// The events table of this machine's catalog of the repository.
fn from_catalog(inv: &Invocation<'_>, repo: &str, q: &EventQuery) -> Result<Vec<Value>> {
    let repo = repo_args::open_repository(inv.global, repo)?;
    let path = catalog::default_path(&repo.config().id);
    let catalog = Catalog::open(&path)
        .with_context(|| format!("cannot open the local catalog {}", path.display()))?;
    catalog
        .query_events(q)
        .context("cannot read the events of the local catalog")?
        .iter()
        .map(|l| serde_json::from_str(l).context("an event in the catalog is not JSON"))
        .collect()
}
